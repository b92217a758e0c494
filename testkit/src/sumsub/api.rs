//! The API of the Sumsub-shaped server ([`super`]): routing, the app-token
//! signature, injected faults and the endpoints.

use super::wire::{error, parse_multipart, percent_decode, query_param, reply, Reply};
use super::*;

/// What a request asks for.
enum Route {
    Create,
    ByExternal(String),
    One(String),
    AddIdDoc(String),
    RequestCheck(String),
    Status(String),
}

pub(super) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map(|pq| pq.as_str());
    let target = target.unwrap_or(parts.uri.path()).to_owned();
    let upload = parts.uri.path().ends_with("/info/idDoc");
    let limit = if upload { MAX_UPLOAD } else { MAX_BODY };
    let answer = match to_bytes(body, limit).await {
        Ok(body) => answer(&shared, &parts, &target, &body),
        Err(_) => Err(error(
            413,
            0,
            &format!("Request body is over {limit} bytes"),
        )),
    };
    let response = match answer {
        Ok(response) => response,
        Err(refusal) => reply(refusal),
    };
    let logged = LoggedRequest {
        method: parts.method.to_string(),
        path: target,
        status: response.status().as_u16(),
    };
    shared.inner.lock().log.push(logged);
    response
}

/// Routes, authenticates, injects faults, handles.
fn answer(shared: &Shared, parts: &Parts, target: &str, body: &[u8]) -> Result<Response, Reply> {
    let Some(route) = route(&parts.method, parts.uri.path()) else {
        let what = format!("No handler for {} {}", parts.method, parts.uri.path());
        return Err(error(404, 0, &what));
    };
    authenticate(&shared.config, parts, target, body)?;
    let mut inner = shared.inner.lock();
    match inner.faults.pop_front() {
        Some(429) => return Err(error(429, 0, "Too many requests")),
        Some(s) if s >= 500 => return Err(error(s, 0, "Internal server error")),
        Some(status) => return Err(error(status, 0, "Injected fault")),
        None => {}
    }
    let query = parts.uri.query();
    match route {
        Route::Create => create(shared, &mut inner, query, body).map(reply),
        Route::ByExternal(external) => {
            let found = inner
                .applicants
                .iter()
                .find(|a| a.value["externalUserId"] == *external);
            let found = found.ok_or_else(|| error(404, 0, "Applicant not found"));
            Ok(reply((200, found?.value.clone())))
        }
        Route::One(id) => Ok(reply((200, applicant(&mut inner, &id)?.value.clone()))),
        Route::Status(id) => Ok(reply((
            200,
            applicant(&mut inner, &id)?.value["review"].clone(),
        ))),
        Route::AddIdDoc(id) => add_id_doc(&mut inner, &id, parts, body),
        Route::RequestCheck(id) => request_check(&mut inner, &id).map(reply),
    }
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let rest = path.strip_prefix(APPLICANTS_PATH)?;
    if rest.is_empty() {
        return (method == Method::POST).then_some(Route::Create);
    }
    let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    let (post, get) = (method == Method::POST, method == Method::GET);
    Some(match segments[..] {
        [who, "one"] if get => match who.strip_prefix("-;externalUserId=") {
            Some(external) => Route::ByExternal(percent_decode(external)?),
            None => Route::One(who.to_owned()),
        },
        [id, "info", "idDoc"] if post => Route::AddIdDoc(id.to_owned()),
        [id, "status", "pending"] if post => Route::RequestCheck(id.to_owned()),
        [id, "status"] if get => Route::Status(id.to_owned()),
        _ => return None,
    })
}

/// Checks `X-App-Token`, `X-App-Access-Ts` and `X-App-Access-Sig` (lowercase
/// hex HMAC-SHA256 of ts + METHOD + path?query + body).
fn authenticate(
    config: &SumsubConfig,
    parts: &Parts,
    target: &str,
    body: &[u8],
) -> Result<(), Reply> {
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(token), Some(ts), Some(sig)) = (
        header("x-app-token"),
        header("x-app-access-ts"),
        header("x-app-access-sig"),
    ) else {
        return Err(error(
            401,
            4006,
            "Not all required authorization headers were provided",
        ));
    };
    if token != config.app_token {
        return Err(error(401, 4001, "App token not found"));
    }
    let Some(seconds) = ts
        .parse::<i64>()
        .ok()
        .filter(|_| ts.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err(error(401, 4005, "Invalid X-App-Access-Ts value"));
    };
    if (seconds - chrono::Utc::now().timestamp()).abs() > TS_TOLERANCE_SECS {
        let why = format!("Request timestamp is more than {TS_TOLERANCE_SECS} s from server time");
        return Err(error(401, 4004, &why));
    }
    let method = parts.method.as_str().to_ascii_uppercase();
    let parts: [&[u8]; 4] = [ts.as_bytes(), method.as_bytes(), target.as_bytes(), body];
    if sig != wire::hmac_sha256(&config.secret_key, &parts) {
        return Err(error(401, 4003, "Request signature mismatch"));
    }
    Ok(())
}

/// Applicant `id`: 400 unless 24 lowercase hex digits, 404 when unknown.
fn applicant<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut Applicant, Reply> {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if id.len() != 24 || !id.bytes().all(hex) {
        return Err(error(400, 0, &format!("Invalid id '{id}'")));
    }
    let found = inner.applicants.iter_mut().find(|a| a.value["id"] == id);
    found.ok_or_else(|| error(404, 0, &format!("Applicant not found: {id}")))
}

/// `POST /resources/applicants?levelName=…`.
fn create(
    shared: &Shared,
    inner: &mut Inner,
    query: Option<&str>,
    body: &[u8],
) -> Result<Reply, Reply> {
    let level = query_param(query, "levelName").filter(|l| *l == shared.config.level_name);
    let Some(level) = level else {
        return Err(error(
            400,
            0,
            "Existing level should be specified to create an applicant",
        ));
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(error(400, 0, "The request body is not a JSON object"));
    };
    let external = fields
        .get("externalUserId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if external.is_empty() || external.chars().count() > MAX_EXTERNAL_ID {
        let why = format!("externalUserId must be a string of 1 to {MAX_EXTERNAL_ID} characters");
        return Err(error(400, 0, &why));
    }
    let existing = inner
        .applicants
        .iter()
        .find(|a| a.value["externalUserId"] == external);
    if let Some(existing) = existing {
        let id = existing.value["id"].as_str().unwrap_or_default();
        let why = format!("Applicant with external user id '{external}' already exists: {id}");
        return Err(error(409, 0, &why));
    }
    for (name, object) in [
        ("email", false),
        ("phone", false),
        ("lang", false),
        ("fixedInfo", true),
    ] {
        let ok = match fields.get(name) {
            None | Some(Value::Null) => true,
            Some(v) => {
                if object {
                    v.is_object()
                } else {
                    v.is_string()
                }
            }
        };
        if !ok {
            let want = if object { "an object" } else { "a string" };
            return Err(error(400, 0, &format!("{name} must be {want}")));
        }
    }
    let now = chrono::Utc::now();
    let (id, inspection) = (inner.new_hex(24), inner.new_hex(24));
    let review = json!({ "reviewId": inner.new_alpha(5), "attemptId": inner.new_alpha(5),
        "attemptCnt": 0, "levelName": level, "createDate": wire::review_date(now),
        "reviewStatus": "init", "priority": 0 });
    let mut applicant = json!({ "id": id, "createdAt": wire::seconds(now), "clientId": CLIENT_ID,
        "inspectionId": inspection, "externalUserId": external, "info": {}, "review": review,
        "type": "individual" });
    for name in ["email", "phone", "lang", "fixedInfo"] {
        if let Some(value) = fields.get(name).filter(|v| !v.is_null()) {
            applicant[name] = value.clone();
        }
    }
    if let Some(info) = fields.get("fixedInfo").filter(|v| v.is_object()) {
        applicant["info"] = info.clone();
    }
    let value = applicant.clone();
    inner.applicants.push(Applicant {
        value,
        docs: Vec::new(),
        hashes: Vec::new(),
    });
    Ok((201, applicant))
}

/// `POST /resources/applicants/{id}/info/idDoc`: a `metadata` part (JSON,
/// `idDocType` and `country` required) and an optional `content` file.
fn add_id_doc(inner: &mut Inner, id: &str, parts: &Parts, body: &[u8]) -> Result<Response, Reply> {
    let image_id = inner.new_image_id();
    let applicant = applicant(inner, id)?;
    let review = &applicant.value["review"];
    match review["reviewStatus"].as_str().unwrap_or_default() {
        "pending" | "queued" | "prechecked" => {
            let why = "Applicant is being checked. Adding new data is not allowed.";
            return Err(error(409, 1006, why));
        }
        "completed" if review["reviewResult"]["reviewRejectType"] == "FINAL" => {
            let why = "Applicant is rejected with the FINAL rejection type.";
            return Err(error(409, 1009, why));
        }
        _ => {}
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    let content_type = content_type
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = wire::boundary(content_type) else {
        return Err(error(
            400,
            0,
            "Expected multipart/form-data with a boundary",
        ));
    };
    let form = parse_multipart(body, &boundary).map_err(|why| error(400, 0, &why))?;
    let named = |name: &str| form.iter().filter(|p| p.name == name).collect::<Vec<_>>();
    let (metadata, content) = (named("metadata"), named("content"));
    let (Some(metadata), true) = (metadata.first(), metadata.len() == 1 && content.len() <= 1)
    else {
        return Err(error(
            400,
            0,
            "Expected one metadata part and at most one content part",
        ));
    };
    if metadata.data.len() > MAX_BODY {
        return Err(error(400, 0, &format!("metadata is over {MAX_BODY} bytes")));
    }
    let doc = match serde_json::from_slice::<Value>(metadata.data) {
        Ok(Value::Object(doc)) => doc,
        _ => return Err(error(400, 0, "metadata is not a JSON object")),
    };
    let code = |v: Option<&Value>, ok: fn(u8) -> bool, len: std::ops::RangeInclusive<usize>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| len.contains(&s.len()) && s.bytes().all(ok))
    };
    let doc_type = |b: u8| b.is_ascii_uppercase() || b == b'_';
    if !code(doc.get("idDocType"), doc_type, 2..=40) {
        return Err(error(
            400,
            0,
            "metadata.idDocType must be a type such as PASSPORT",
        ));
    }
    if !code(doc.get("country"), |b| b.is_ascii_uppercase(), 3..=3) {
        return Err(error(
            400,
            0,
            "metadata.country must be an ISO alpha-3 code such as GBR",
        ));
    }
    let file = content
        .first()
        .map(|part| (part.data, part.filename.clone(), part.content_type.clone()));
    let mut stored = Value::Object(doc.clone());
    if let Some((data, file_name, mime)) = file {
        if data.is_empty() {
            return Err(error(400, 1003, "Uploaded file is empty (0 bytes)."));
        }
        let hash = hex::encode(Sha256::digest(data));
        if applicant.hashes.contains(&hash) {
            return Err(error(
                409,
                1000,
                "Duplicate document (image, video) was uploaded.",
            ));
        }
        applicant.hashes.push(hash.clone());
        stored["imageId"] = json!(image_id);
        stored["fileName"] = json!(file_name);
        stored["mimeType"] = json!(mime);
        stored["size"] = json!(data.len());
        stored["sha256"] = json!(hash);
    }
    stored["addedDate"] = json!(wire::seconds(chrono::Utc::now()));
    applicant.docs.push(stored.clone());
    let image_id = stored["imageId"].as_str().map(str::to_owned);
    let mut response = reply((200, Value::Object(doc)));
    if let Some(image_id) = image_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert("x-image-id", image_id);
    }
    Ok(response)
}

/// `POST /resources/applicants/{id}/status/pending`: the review becomes
/// `pending` (a new attempt); refused while a check runs or before any
/// document was added.
fn request_check(inner: &mut Inner, id: &str) -> Result<Reply, Reply> {
    let alpha = (inner.new_alpha(5), inner.new_alpha(5));
    let applicant = applicant(inner, id)?;
    let review = &mut applicant.value["review"];
    let status = review["reviewStatus"].as_str().unwrap_or_default();
    if ["pending", "queued", "prechecked"].contains(&status) {
        let why = format!("Applicant is already in the {status} state");
        return Err(error(409, 3000, &why));
    }
    if applicant.docs.is_empty() {
        let why = "Not all required documents or data are submitted. Make sure to complete \
            [IDENTITY] verification steps beforehand.";
        return Err(error(409, 0, why));
    }
    let attempts = review["attemptCnt"].as_u64().unwrap_or(0) + 1;
    if let Some(fields) = review.as_object_mut() {
        fields.remove("reviewResult");
        fields.remove("reviewDate");
    }
    review["reviewStatus"] = json!("pending");
    review["reviewId"] = json!(alpha.0);
    review["attemptId"] = json!(alpha.1);
    review["attemptCnt"] = json!(attempts);
    review["createDate"] = json!(wire::review_date(chrono::Utc::now()));
    Ok((200, json!({ "ok": 1 })))
}
