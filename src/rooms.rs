//! Room names: the one place that spells them.
//!
//! Every tenant room starts with `tenant:<t>:` so two tenants that reuse a user or course
//! id can never share a room. Ids are validated newtypes (no `:`), so names cannot collide.

use crate::ids::{CourseId, TenantId, TokenId, UserId};
use crate::role::Role;

/// Every socket of a tenant.
pub fn tenant(t: &TenantId) -> String {
    format!("tenant:{t}")
}

/// Every socket (device, tab) of one user.
pub fn user(t: &TenantId, u: &UserId) -> String {
    format!("tenant:{t}:user:{u}")
}

/// Every socket of one role inside a tenant.
pub fn tenant_role(t: &TenantId, r: Role) -> String {
    format!("tenant:{t}:role:{}", r.as_str())
}

/// The tenant's admin sockets.
pub fn admins(t: &TenantId) -> String {
    format!("tenant:{t}:admins")
}

/// Members (students and instructors) of a course.
pub fn course(t: &TenantId, c: &CourseId) -> String {
    format!("tenant:{t}:course:{c}")
}

/// Instructors of a course: where progress events go.
pub fn course_instructors(t: &TenantId, c: &CourseId) -> String {
    format!("tenant:{t}:course:{c}:instructors")
}

/// The sockets opened with one token (by the digest of its `jti`), so that revoking the
/// token reaches them on every node. Not a kind of the room gauges.
pub fn token(t: &TenantId, jti: &TokenId) -> String {
    format!("tenant:{t}:jti:{}", jti.digest())
}

/// Platform-wide role room; only super admins and the service API emit to it.
pub fn platform_role(r: Role) -> String {
    format!("role:{}", r.as_str())
}

/// The tenant a room belongs to; `None` for a platform role room.
pub fn tenant_of(room: &str) -> Option<&str> {
    let rest = room.strip_prefix("tenant:")?;
    Some(rest.split_once(':').map_or(rest, |(t, _)| t))
}

/// The tenant and user of a user's room (see [`user`]); `None` for any other room.
pub fn user_of(room: &str) -> Option<(TenantId, UserId)> {
    let rest = room.strip_prefix("tenant:")?;
    let (t, u) = rest.split_once(":user:")?;
    Some((TenantId::parse(t).ok()?, UserId::parse(u).ok()?))
}

/// The hash tag of a room's sharded adapter channel (issue 17): its tenant, so that a
/// Redis Cluster spreads tenants over its masters, or `""` (the channel hashed on its own)
/// for a platform role room. `None` for a token room: it only ever gets a revocation
/// notice, which is not worth a subscription per connect, so it keeps the shared channel.
/// `None` for a user's room too: the connection ledger says which nodes hold the user's
/// sockets, so its emits go to those nodes (`cluster::user_servers`) without a
/// subscription per connection.
pub fn shard_tag(room: &str) -> Option<&str> {
    if room.starts_with("role:") {
        return Some("");
    }
    let rest = room.strip_prefix("tenant:")?;
    let (tenant, kind) = rest.split_once(':').unwrap_or((rest, ""));
    (!kind.starts_with("jti:") && !kind.starts_with("user:")).then_some(tenant)
}

/// The kind of a room, a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomKind {
    Tenant,
    User,
    Role,
    Admins,
    Course,
    Instructors,
}

impl RoomKind {
    pub const ALL: [RoomKind; 6] = [
        Self::Tenant,
        Self::User,
        Self::Role,
        Self::Admins,
        Self::Course,
        Self::Instructors,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::User => "user",
            Self::Role => "role",
            Self::Admins => "admins",
            Self::Course => "course",
            Self::Instructors => "instructors",
        }
    }

    /// Classifies a room name built by this module; `None` for anything else.
    pub fn of(room: &str) -> Option<RoomKind> {
        if room.starts_with("role:") {
            return Some(Self::Role);
        }
        let rest = room.strip_prefix("tenant:")?;
        let mut parts = rest.split(':');
        parts.next()?;
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => Some(Self::Tenant),
            (Some("admins"), None, _) => Some(Self::Admins),
            (Some("user"), Some(_), None) => Some(Self::User),
            (Some("role"), Some(_), None) => Some(Self::Role),
            (Some("course"), Some(_), None) => Some(Self::Course),
            (Some("course"), Some(_), Some("instructors")) => Some(Self::Instructors),
            _ => None,
        }
    }
}

/// The tenant and course of a course room (`instructors` for its instructors' room), for
/// the operator console's per-course view; `None` for any other room.
pub fn course_of(room: &str) -> Option<(TenantId, CourseId, bool)> {
    let instructors = match RoomKind::of(room)? {
        RoomKind::Course => false,
        RoomKind::Instructors => true,
        _ => return None,
    };
    let mut parts = room.strip_prefix("tenant:")?.split(':');
    let t = TenantId::parse(parts.next()?).ok()?;
    let c = CourseId::parse(parts.nth(1)?).ok()?;
    Some((t, c, instructors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn tenant_rooms_carry_the_tenant_so_equal_ids_in_two_tenants_never_meet() {
        let u = UserId::parse("7").unwrap();
        let c = CourseId::parse("101").unwrap();
        assert_eq!(user(&t("a"), &u), "tenant:a:user:7");
        assert_ne!(user(&t("a"), &u), user(&t("b"), &u));
        assert_eq!(course(&t("a"), &c), "tenant:a:course:101");
        assert_ne!(course(&t("a"), &c), course(&t("b"), &c));
        assert_eq!(
            course_instructors(&t("a"), &c),
            "tenant:a:course:101:instructors"
        );
        assert_eq!(admins(&t("a")), "tenant:a:admins");
        assert_eq!(tenant_role(&t("a"), Role::Student), "tenant:a:role:student");
        assert_eq!(platform_role(Role::SuperAdmin), "role:super_admin");
    }

    #[test]
    fn a_course_room_names_its_tenant_and_course_and_no_other_room_does() {
        let (u, c) = (UserId::parse("u").unwrap(), CourseId::parse("c1").unwrap());
        assert_eq!(
            course_of(&course(&t("a"), &c)),
            Some((t("a"), c.clone(), false))
        );
        assert_eq!(
            course_of(&course_instructors(&t("a"), &c)),
            Some((t("a"), c.clone(), true))
        );
        assert_eq!(course_of(&user(&t("a"), &u)), None);
        assert_eq!(course_of(&tenant(&t("a"))), None);
    }

    #[test]
    fn every_room_of_a_tenant_hashes_its_channel_by_the_tenant_except_token_and_user_rooms() {
        let (u, c) = (UserId::parse("u").unwrap(), CourseId::parse("c").unwrap());
        assert_eq!(shard_tag(&user(&t("a"), &u)), None);
        for room in [
            tenant(&t("a")),
            tenant_role(&t("a"), Role::Admin),
            admins(&t("a")),
            course(&t("a"), &c),
            course_instructors(&t("a"), &c),
        ] {
            assert_eq!(shard_tag(&room), Some("a"), "{room}");
        }
        assert_eq!(shard_tag(&platform_role(Role::Admin)), Some(""));
        assert_eq!(shard_tag("elsewhere"), None);
    }

    #[test]
    fn every_built_room_is_classified_by_its_kind() {
        let (u, c) = (UserId::parse("u").unwrap(), CourseId::parse("c").unwrap());
        let cases = [
            (tenant(&t("a")), RoomKind::Tenant),
            (user(&t("a"), &u), RoomKind::User),
            (tenant_role(&t("a"), Role::Admin), RoomKind::Role),
            (platform_role(Role::Admin), RoomKind::Role),
            (admins(&t("a")), RoomKind::Admins),
            (course(&t("a"), &c), RoomKind::Course),
            (course_instructors(&t("a"), &c), RoomKind::Instructors),
        ];
        for (room, kind) in cases {
            assert_eq!(RoomKind::of(&room), Some(kind), "{room}");
        }
        assert_eq!(RoomKind::of("elsewhere"), None);
        assert_eq!(RoomKind::of("tenant:a:unknown:x"), None);
        let jti = TokenId::parse("j:1").unwrap();
        assert_eq!(RoomKind::of(&token(&t("a"), &jti)), None);
        assert_eq!(shard_tag(&token(&t("a"), &jti)), None);
        assert_eq!(user_of(&user(&t("a"), &u)), Some((t("a"), u.clone())));
        assert_eq!(user_of(&course(&t("a"), &c)), None);
        assert_eq!(user_of(&tenant(&t("a"))), None);
        assert_ne!(token(&t("a"), &jti), token(&t("b"), &jti));
    }
}
