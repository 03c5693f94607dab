//! Presence key names: the one place that spells them (apart from the store's own keys
//! in `store/keys.rs`, so that presence can move without touching them).
//!
//! A course's presence keys share the hash tag `{<tenant>:<course>}`, a tenant's the tag
//! `{<tenant>}`: every script touches one slot, and a large course does not pile its
//! traffic onto its tenant's slot. Ids admit neither `:` nor braces, so no tenant or
//! course can forge another's tag. The per-process registry lives under `{cluster}`.

use super::Scope;

/// The prefix of a scope's keys.
pub fn prefix(scope: &Scope) -> String {
    match scope {
        Scope::Tenant(t) => format!("lms:{{{t}}}:presence"),
        Scope::Course(t, c) => format!("lms:{{{t}:{c}}}:presence"),
    }
}

/// Hash user → how many node processes hold it in the scope.
pub fn holders(scope: &Scope) -> String {
    format!("{}:users", prefix(scope))
}

/// Hash user → `<role>|<since ms>`.
pub fn info(scope: &Scope) -> String {
    format!("{}:info", prefix(scope))
}

/// Set of the users one node process holds in the scope.
pub fn held_by(scope: &Scope, instance: &str) -> String {
    format!("{}:inst:{instance}", prefix(scope))
}

/// Hash user → `<1|0>|<ms>`: what instructors last heard, and when (the debounce).
pub fn announced(scope: &Scope) -> String {
    format!("{}:announced", prefix(scope))
}

/// Sorted set instance → heartbeat expiry (ms): the node processes holding presence.
pub fn registry() -> &'static str {
    "lms:{cluster}:presence:instances"
}

/// Set of the scopes (see [`scope_member`]) one node process has written to.
pub fn scopes_of(instance: &str) -> String {
    format!("lms:{{cluster}}:presence:scopes:{instance}")
}

/// A scope as a member of [`scopes_of`], parsed back by [`parse_scope_member`].
pub fn scope_member(scope: &Scope) -> String {
    match scope {
        Scope::Tenant(t) => format!("t:{t}"),
        Scope::Course(t, c) => format!("c:{t}:{c}"),
    }
}

pub fn parse_scope_member(raw: &str) -> Option<Scope> {
    let mut parts = raw.split(':');
    let scope = match (parts.next()?, parts.next(), parts.next()) {
        ("t", Some(t), None) => Scope::Tenant(t.parse().ok()?),
        ("c", Some(t), Some(c)) => Scope::Course(t.parse().ok()?, c.parse().ok()?),
        _ => return None,
    };
    parts.next().is_none().then_some(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        &key[open + 1..close]
    }

    #[test]
    fn a_course_scope_is_tagged_by_tenant_and_course_and_a_tenant_scope_by_tenant() {
        let course = Scope::Course("acme".parse().unwrap(), "c1".parse().unwrap());
        let tenant = Scope::Tenant("acme".parse().unwrap());
        for key in [
            holders(&course),
            info(&course),
            held_by(&course, "n1#ab"),
            announced(&course),
        ] {
            assert_eq!(tag(&key), "acme:c1", "{key}");
        }
        assert_eq!(tag(&holders(&tenant)), "acme");
        assert_ne!(
            holders(&course),
            holders(&Scope::Course(
                "other".parse().unwrap(),
                "c1".parse().unwrap()
            ))
        );
        assert_eq!(tag(registry()), "cluster");
        assert_eq!(tag(&scopes_of("n1#ab")), "cluster");
    }

    #[test]
    fn scope_members_parse_back_and_nothing_else_does() {
        for scope in [
            Scope::Tenant("acme".parse().unwrap()),
            Scope::Course("acme".parse().unwrap(), "c1".parse().unwrap()),
        ] {
            assert_eq!(parse_scope_member(&scope_member(&scope)), Some(scope));
        }
        for bad in ["", "t", "x:acme", "c:acme", "t:a:b", "c:a:b:c", "t:a{b}"] {
            assert_eq!(parse_scope_member(bad), None, "{bad}");
        }
    }
}
