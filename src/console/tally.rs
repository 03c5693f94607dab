//! This node's sockets, counted per tenant, course and user for the console.
//!
//! Read from the local sockets (their session claims and rooms) on each poll: the node
//! already holds them, and a count kept on the side could drift from what is connected.
//! Every list is bounded, so a large tenant costs one pass over the sockets, not a huge
//! answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::ids::{CourseId, TenantId, UserId};
use crate::role::Role;
use crate::rooms;
use crate::socket::session::Session;
use crate::types::{ConsoleCourse, ConsoleUser};

/// Most tenants one overview lists (the busiest first).
pub const TENANTS_MAX: usize = 100;
/// Most courses listed per tenant (the busiest first).
pub const COURSES_MAX: usize = 50;
/// Most users listed per tenant (most sockets first).
pub const USERS_MAX: usize = 100;

/// One socket as the tally sees it.
pub struct SocketView {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
    pub rooms: Vec<String>,
}

/// One tenant's sockets on this node.
#[derive(Debug, Default)]
pub struct TenantTally {
    pub connections: u64,
    pub courses: Vec<ConsoleCourse>,
    pub users: Vec<ConsoleUser>,
    pub users_truncated: bool,
}

/// The local sockets of the tenants `visible` admits (sockets without a tenant, a
/// platform super admin's, are not any tenant's).
pub fn local<A: Adapter>(
    io: &SocketIo<A>,
    visible: impl Fn(&TenantId) -> bool,
) -> BTreeMap<TenantId, TenantTally> {
    let views = io.local().sockets().into_iter().filter_map(|s| {
        let session = s.extensions.get::<Arc<Session>>()?;
        let tenant = session.claims.tenant.clone()?;
        visible(&tenant).then(|| SocketView {
            tenant,
            user: session.claims.sub.clone(),
            role: session.claims.role,
            rooms: s.rooms().into_iter().map(|r| r.into_owned()).collect(),
        })
    });
    fold(views)
}

#[derive(Default)]
struct Acc {
    connections: u64,
    courses: HashMap<CourseId, (u64, u64)>,
    users: HashMap<UserId, (Role, u64)>,
}

/// Counts sockets per tenant, course and user, keeping the busiest within the bounds.
pub fn fold(sockets: impl IntoIterator<Item = SocketView>) -> BTreeMap<TenantId, TenantTally> {
    let mut acc: HashMap<TenantId, Acc> = HashMap::new();
    for s in sockets {
        let a = acc.entry(s.tenant.clone()).or_default();
        a.connections += 1;
        a.users.entry(s.user).or_insert((s.role, 0)).1 += 1;
        for room in &s.rooms {
            if let Some((t, c, instructors)) = rooms::course_of(room)
                && t == s.tenant
            {
                let n = a.courses.entry(c).or_default();
                if instructors {
                    n.1 += 1;
                } else {
                    n.0 += 1;
                }
            }
        }
    }
    let mut tenants: Vec<(TenantId, Acc)> = acc.into_iter().collect();
    tenants.sort_by(|a, b| b.1.connections.cmp(&a.1.connections).then(a.0.cmp(&b.0)));
    tenants.truncate(TENANTS_MAX);
    tenants.into_iter().map(|(t, a)| (t, finish(a))).collect()
}

fn finish(a: Acc) -> TenantTally {
    let mut courses: Vec<ConsoleCourse> = a
        .courses
        .into_iter()
        .map(|(course_id, (sockets, instructors))| ConsoleCourse {
            course_id,
            sockets,
            instructors,
            online: None,
        })
        .collect();
    courses.sort_by(|x, y| {
        y.sockets
            .cmp(&x.sockets)
            .then(x.course_id.cmp(&y.course_id))
    });
    courses.truncate(COURSES_MAX);
    let mut users: Vec<ConsoleUser> = a
        .users
        .into_iter()
        .map(|(user_id, (role, sockets))| ConsoleUser {
            user_id,
            role,
            sockets,
        })
        .collect();
    users.sort_by(|x, y| y.sockets.cmp(&x.sockets).then(x.user_id.cmp(&y.user_id)));
    let users_truncated = users.len() > USERS_MAX;
    users.truncate(USERS_MAX);
    TenantTally {
        connections: a.connections,
        courses,
        users,
        users_truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(t: &str, u: &str, role: Role, courses: &[&str]) -> SocketView {
        let tenant = TenantId::parse(t).unwrap();
        let mut rooms = vec![rooms::tenant(&tenant)];
        for c in courses {
            let c = CourseId::parse(*c).unwrap();
            rooms.push(rooms::course(&tenant, &c));
            if role == Role::Instructor {
                rooms.push(rooms::course_instructors(&tenant, &c));
            }
        }
        SocketView {
            tenant,
            user: UserId::parse(u).unwrap(),
            role,
            rooms,
        }
    }

    #[test]
    fn sockets_are_counted_per_tenant_course_and_user() {
        let tally = fold([
            view("a", "s1", Role::Student, &["c1"]),
            view("a", "s1", Role::Student, &["c1"]),
            view("a", "i1", Role::Instructor, &["c1", "c2"]),
            view("b", "s1", Role::Student, &["c1"]),
        ]);
        let a = &tally[&TenantId::parse("a").unwrap()];
        assert_eq!(a.connections, 3);
        let c1 = a
            .courses
            .iter()
            .find(|c| c.course_id.as_str() == "c1")
            .unwrap();
        assert_eq!((c1.sockets, c1.instructors), (3, 1));
        assert_eq!(a.users[0].user_id.as_str(), "s1");
        assert_eq!(a.users[0].sockets, 2);
        assert_eq!(tally[&TenantId::parse("b").unwrap()].connections, 1);
    }

    #[test]
    fn a_tenant_with_many_users_lists_the_busiest_and_says_it_was_cut() {
        let many = (0..USERS_MAX + 5).map(|i| view("a", &format!("u{i}"), Role::Student, &[]));
        let tally = fold(many);
        let a = &tally[&TenantId::parse("a").unwrap()];
        assert_eq!(a.users.len(), USERS_MAX);
        assert!(a.users_truncated);
        assert_eq!(a.connections, (USERS_MAX + 5) as u64);
    }
}
