//! Lua scripts sent by hash (`EVALSHA`), not by body (`EVAL`).
//!
//! Every fan-out recipient runs four or five scripts (inbox insert, delivery mark, recovery
//! appends). With `EVAL`, Redis reads each script's body from the request and hashes it
//! again on every call: in the noisy bench (docs/benchmarks.md, session 7) scripts took 5.0
//! of Redis's 6 CPU-s, 18.9 µs a call, of which the commands inside were under 7 µs. A
//! script's hash is computed once per process here; a server that does not know it
//! (`NOSCRIPT`: a restart, a failover, a new cluster node) gets it loaded and the call sent
//! again, so callers never see the difference.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use fred::prelude::{Client, Error};
use fred::types::scripts::Script;
use fred::types::{FromValue, MultipleKeys, MultipleValues};

/// Scripts by the address of their body: each body is a `&'static str` (an `include_str!`
/// or a lazily built static), so its address names it for the process's lifetime.
static SCRIPTS: LazyLock<RwLock<HashMap<usize, Arc<Script>>>> = LazyLock::new(Default::default);

fn script(body: &'static str) -> Arc<Script> {
    let key = body.as_ptr() as usize;
    if let Some(s) = SCRIPTS.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return s.clone();
    }
    SCRIPTS
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert_with(|| Arc::new(Script::from_lua(body)))
        .clone()
}

/// `EVAL` by hash: what `LuaInterface::eval` does, without sending the body each time.
pub trait EvalCached {
    fn eval_cached<R, K, V>(
        &self,
        body: &'static str,
        keys: K,
        args: V,
    ) -> impl Future<Output = Result<R, Error>> + Send
    where
        R: FromValue + Send,
        K: Into<MultipleKeys> + Send,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<Error> + Send;
}

impl EvalCached for Client {
    async fn eval_cached<R, K, V>(&self, body: &'static str, keys: K, args: V) -> Result<R, Error>
    where
        R: FromValue + Send,
        K: Into<MultipleKeys> + Send,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<Error> + Send,
    {
        script(body).evalsha_with_reload(self, keys, args).await
    }
}

/// The hash Redis knows a script by (tests compare it with `SCRIPT EXISTS`).
pub fn sha1(body: &'static str) -> String {
    script(body).sha1().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_is_hashed_once_and_as_redis_hashes_it() {
        const BODY: &str = "return 1";
        assert!(Arc::ptr_eq(&script(BODY), &script(BODY)));
        // sha1("return 1"), as `SCRIPT LOAD "return 1"` answers.
        assert_eq!(sha1(BODY), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }
}
