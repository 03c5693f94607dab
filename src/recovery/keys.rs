//! Recovery key names: the one place that spells them.
//!
//! A room's stream lives on the slot of what the room is about, with the tags of
//! `store/keys.rs`: a user's room on `{<tenant>:u:<user>}`, a course's rooms on
//! `{<tenant>:c:<course>}`, the other tenant rooms on `{<tenant>}`, platform rooms on
//! `{platform}`. Every stream is one key, so each script touches one slot and a recovery
//! reads only the streams of the socket's own rooms. Sessions sit on their user's slot and
//! carry the tenant and user in the name: a token of another user can never find them.
//! Ids admit neither `:` nor braces, so no room name can forge another tenant's tag.

use crate::ids::{TenantId, UserId};

/// The pseudo room of a broadcast to every socket (`rooms` empty).
pub const EVERYONE: &str = "*";

/// The stream of a room built by `rooms.rs`; `None` for a name it does not build.
pub fn stream(room: &str) -> Option<String> {
    if room == EVERYONE {
        return Some("lms:{platform}:rs:all".into());
    }
    if let Some(role) = room.strip_prefix("role:") {
        return Some(format!("lms:{{platform}}:rs:role:{role}"));
    }
    let rest = room.strip_prefix("tenant:")?;
    let (t, rest) = rest.split_once(':').unwrap_or((rest, ""));
    if t.is_empty() {
        return None;
    }
    let mut parts = rest.split(':');
    Some(
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(""), None, ..) => format!("lms:{{{t}}}:rs"),
            (Some("user"), Some(u), None, _) => format!("lms:{{{t}:u:{u}}}:rs"),
            (Some("course"), Some(c), None, _) => format!("lms:{{{t}:c:{c}}}:rs"),
            (Some("course"), Some(c), Some("instructors"), None) => {
                format!("lms:{{{t}:c:{c}}}:rs:instructors")
            }
            (Some(kind @ ("role" | "jti")), Some(x), None, _) => {
                format!("lms:{{{t}}}:rs:{kind}:{x}")
            }
            (Some("admins"), None, ..) => format!("lms:{{{t}}}:rs:admins"),
            _ => return None,
        },
    )
}

/// A recoverable session of one user, by its private id (a validated [`super::Pid`]).
pub fn session(t: Option<&TenantId>, u: &UserId, pid: &str) -> String {
    match t {
        Some(t) => format!("lms:{{{t}:u:{u}}}:rs:pid:{pid}"),
        None => format!("lms:{{platform}}:user:{u}:rs:pid:{pid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CourseId;
    use crate::role::Role;
    use crate::rooms;
    use crate::store::keys::hash_tag as tag;

    #[test]
    fn every_room_has_a_stream_on_the_slot_of_what_it_is_about() {
        let t = TenantId::parse("a").unwrap();
        let u = UserId::parse("7").unwrap();
        let c = CourseId::parse("101").unwrap();
        let cases = [
            (rooms::tenant(&t), "a"),
            (rooms::user(&t, &u), "a:u:7"),
            (rooms::course(&t, &c), "a:c:101"),
            (rooms::course_instructors(&t, &c), "a:c:101"),
            (rooms::admins(&t), "a"),
            (rooms::tenant_role(&t, Role::Student), "a"),
            (rooms::platform_role(Role::Admin), "platform"),
            (EVERYONE.to_string(), "platform"),
        ];
        for (room, slot) in cases {
            let key = stream(&room).unwrap_or_else(|| panic!("{room}"));
            assert_eq!(tag(&key), slot, "{room}");
        }
        assert_ne!(
            stream(&rooms::course(&t, &c)),
            stream(&rooms::course_instructors(&t, &c))
        );
        assert_eq!(stream("elsewhere"), None);
        assert_eq!(stream("tenant:a:unknown:x"), None);
    }

    #[test]
    fn a_session_key_names_its_tenant_and_user() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let u = UserId::parse("7").unwrap();
        assert_eq!(session(Some(&a), &u, "p"), "lms:{a:u:7}:rs:pid:p");
        assert_ne!(session(Some(&a), &u, "p"), session(Some(&b), &u, "p"));
    }
}
