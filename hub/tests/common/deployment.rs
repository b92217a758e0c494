//! The settings every node of one multi-node deployment shares in a test:
//! a DynamoDB store and Redis keys of the test's own (named after a fresh
//! run id, so tests on the shared moto and Redis never meet) and one token
//! signing key. Each test adds what else its nodes share (a data key, a
//! KMS key, webhook secrets).

use hub::config::Config;

/// One deployment (see the module doc).
#[derive(Clone)]
pub struct Deployment {
    run: String,
    dynamodb: String,
    jwt_secret: String,
}

impl Deployment {
    /// A deployment of its own on the DynamoDB at `dynamodb` (moto, or a
    /// proxy in front of it), every node signing with `jwt_secret`.
    pub fn new(dynamodb: impl Into<String>, jwt_secret: &str) -> Deployment {
        Deployment {
            run: uuid::Uuid::new_v4().simple().to_string(),
            dynamodb: dynamodb.into(),
            jwt_secret: jwt_secret.to_owned(),
        }
    }

    /// Makes `c` a node of the deployment: its store, its keys in the
    /// Redis at `redis_url`, its signing key.
    pub fn apply(&self, c: &mut Config, redis_url: &str) {
        let api = &mut c.api;
        api.store = api::config::StoreKind::Dynamodb;
        api.dynamodb_endpoint = self.dynamodb.clone();
        api.dynamodb_table_prefix = format!("t{}-", self.run);
        api.dynamodb_create_tables = true;
        api.aws_access_key_id = "test".into();
        api.aws_secret_access_key = Some(api::secret::Secret::new("test"));
        api.redis_url = Some(api::secret::Secret::new(redis_url));
        api.redis_key_prefix = format!("nax:test:{}:", self.run);
        api.jwt_secret = Some(api::secret::Secret::new(&self.jwt_secret));
    }
}
