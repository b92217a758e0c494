//! The dead-man's switches in Redis, shared by every node (see the module
//! doc of [`super`]). Keys, after the link's prefix:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `nax:dms:after` | sorted set | user id → `cancel_after` deadline (ms, Redis clock) |
//! | `nax:dms:cod` | sorted set | user id → when to check the user's attached connections (ms): the latest lease expiry + grace, or a detach + grace |
//! | `nax:dms:conns:{user}` | sorted set | attached connection id → lease expiry (ms) |
//! | `nax:dms:tracked:{user}` | sorted set | order id placed on the user's attached connections → when tracked (ms); the newest `max_tracked` are kept |
//!
//! Every change is one Lua script reading Redis' `TIME`, so nodes with
//! skewed clocks agree on deadlines. The sweep script removes each due
//! entry as it returns it, so one node fires it.

use super::{Sweep, Switches, GRACE, LEASE_TTL, MAX_TRACKED};
use crate::cluster::link::{RedisLink, FAIL_FAST};
use std::sync::Arc;
use std::time::Duration;

/// Longest a switch call waits for Redis.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Redis' clock in ms, as `now`.
const NOW: &str = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// KEYS[1] after; ARGV[1] user, ARGV[2] timeout ms (0 disarms). Returns
/// the deadline ms, or -1 when disarmed.
const ARM: &str = "
if ARGV[2] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return -1
end
local at = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], at, ARGV[1])
return at
";

/// KEYS[1] cod, KEYS[2] conns:{user}; ARGV[1] user, ARGV[2] conn,
/// ARGV[3] lease ms, ARGV[4] grace ms.
const ATTACH: &str = "
local expiry = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], expiry, ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]) + 60000)
redis.call('ZADD', KEYS[1], 'GT', expiry + tonumber(ARGV[4]), ARGV[1])
return 1
";

/// KEYS[1] cod; ARGV[1] key prefix of conns, ARGV[2] lease ms, ARGV[3]
/// grace ms, then (user, conn) pairs: [`ATTACH`] for each.
const RENEW: &str = "
local lease = tonumber(ARGV[2])
local grace = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local conns = ARGV[1] .. 'conns:' .. ARGV[i]
  redis.call('ZADD', conns, now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', conns, lease + grace + 60000)
  redis.call('ZADD', KEYS[1], 'GT', now + lease + grace, ARGV[i])
end
return 1
";

/// Connections renewed per script call.
const RENEW_BATCH: usize = 500;

/// KEYS[1] cod, KEYS[2] conns:{user}; ARGV[1] user, ARGV[2] conn,
/// ARGV[3] grace ms. The user is checked at the latest remaining lease
/// expiry (or now) + grace.
const DETACH: &str = "
redis.call('ZREM', KEYS[2], ARGV[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local at = now
if #last == 2 and tonumber(last[2]) > at then at = tonumber(last[2]) end
redis.call('ZADD', KEYS[1], at + tonumber(ARGV[3]), ARGV[1])
return 1
";

/// KEYS[1] tracked:{user}; ARGV[1] order id, ARGV[2] most tracked (the
/// oldest beyond it are dropped). Scores are Redis' ms, made strictly
/// increasing per user, so ties cannot reorder what was tracked.
const TRACK: &str = "
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
local score = now
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #top == 2 and tonumber(top[2]) >= score then score = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1)
return 1
";

/// KEYS[1] after, KEYS[2] cod; ARGV[1] key prefix of conns/tracked,
/// ARGV[2] most entries, ARGV[3] grace ms. Returns {now, after users,
/// {user, order ids}..., next due ms or -1}.
const SWEEP: &str = "
local limit = tonumber(ARGV[2])
local after = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, user in ipairs(after) do redis.call('ZREM', KEYS[1], user) end
local gone = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, user in ipairs(due) do
  local conns = ARGV[1] .. 'conns:' .. user
  local orders = ARGV[1] .. 'tracked:' .. user
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  local last = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if #last == 2 then
    redis.call('ZADD', KEYS[2], tonumber(last[2]) + tonumber(ARGV[3]), user)
  else
    redis.call('ZREM', KEYS[2], user)
    table.insert(gone, {user, redis.call('ZRANGE', orders, 0, -1)})
    redis.call('DEL', orders)
  end
end
local next = -1
for _, key in ipairs(KEYS) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 2 and (next < 0 or tonumber(first[2]) < next) then next = tonumber(first[2]) end
end
return {now, after, gone, next}
";

/// The switches in Redis (see the module doc).
pub struct RedisSwitches {
    link: Arc<RedisLink>,
    /// `nax:dms:` after the link's prefix.
    prefix: String,
    arm: redis::Script,
    attach: redis::Script,
    renew: redis::Script,
    detach: redis::Script,
    track: redis::Script,
    sweep: redis::Script,
    /// Most orders tracked per user (the newest are kept).
    max_tracked: usize,
}

impl RedisSwitches {
    pub fn new(link: Arc<RedisLink>) -> Self {
        Self::with_max_tracked(link, MAX_TRACKED)
    }

    /// [`RedisSwitches::new`] keeping at most `max_tracked` (at least 1)
    /// orders per user.
    pub fn with_max_tracked(link: Arc<RedisLink>, max_tracked: usize) -> Self {
        let script = |body: &str| redis::Script::new(&format!("{NOW}{body}"));
        RedisSwitches {
            prefix: link.key("nax:dms:"),
            link,
            arm: script(ARM),
            attach: script(ATTACH),
            renew: script(RENEW),
            detach: script(DETACH),
            track: script(TRACK),
            sweep: script(SWEEP),
            max_tracked: max_tracked.max(1),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs a script call. The switches' state has no fallback, so while
    /// the link rests after another caller's failure (a session-cache read
    /// that took over its 50 ms, say) the call waits the window out and
    /// its probe's answer, up to twice the window, rather than fail an op
    /// at once.
    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        self.link
            .call_within(CALL_TIMEOUT, 2 * FAIL_FAST, |mut c| async move {
                invocation.invoke_async::<T>(&mut c).await
            })
            .await
            .map_err(|e| e.to_string())
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[async_trait::async_trait]
impl Switches for RedisSwitches {
    async fn arm(&self, user: &str, timeout_ms: u64) -> Result<Option<u64>, String> {
        let mut call = self.arm.key(self.key("after"));
        call.arg(user).arg(timeout_ms);
        let at: i64 = self.run(call).await?;
        Ok((at >= 0).then(|| at as u64 * 1_000))
    }

    async fn attach(&self, user: &str, conn: &str) -> Result<(), String> {
        let mut call = self.attach.key(self.key("cod"));
        call.key(self.key(&format!("conns:{user}")))
            .arg(user)
            .arg(conn)
            .arg(ms(LEASE_TTL))
            .arg(ms(GRACE));
        self.run::<i64>(call).await.map(drop)
    }

    async fn renew(&self, conns: &[(String, String)]) -> Result<(), String> {
        // One script call per RENEW_BATCH connections, every LEASE_TTL / 3.
        for batch in conns.chunks(RENEW_BATCH) {
            let mut call = self.renew.key(self.key("cod"));
            call.arg(&self.prefix).arg(ms(LEASE_TTL)).arg(ms(GRACE));
            for (user, conn) in batch {
                call.arg(user).arg(conn);
            }
            self.run::<i64>(call).await?;
        }
        Ok(())
    }

    async fn track(&self, user: &str, order_id: &str) -> Result<(), String> {
        let mut call = self.track.key(self.key(&format!("tracked:{user}")));
        call.arg(order_id).arg(self.max_tracked);
        self.run::<i64>(call).await.map(drop)
    }

    async fn detach(&self, user: &str, conn: &str) -> Result<(), String> {
        let mut call = self.detach.key(self.key("cod"));
        call.key(self.key(&format!("conns:{user}")))
            .arg(user)
            .arg(conn)
            .arg(ms(GRACE));
        self.run::<i64>(call).await.map(drop)
    }

    async fn sweep(&self, limit: usize) -> Result<Sweep, String> {
        let mut call = self.sweep.key(self.key("after"));
        call.key(self.key("cod"))
            .arg(&self.prefix)
            .arg(limit)
            .arg(ms(GRACE));
        type Reply = (i64, Vec<String>, Vec<(String, Vec<String>)>, i64);
        let (now, after, disconnected, next): Reply = self.run(call).await?;
        let next_in = (next >= 0).then(|| Duration::from_millis((next - now).max(0) as u64));
        Ok(Sweep {
            after,
            disconnected,
            next_in,
        })
    }

    fn sweep_every(&self) -> Option<Duration> {
        Some(super::SWEEP_EVERY)
    }
}
