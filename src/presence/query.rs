//! The read side of presence, shared by the socket events and the service API: who is
//! online in a course or a tenant, as the wire types of §10. Callers check who may ask.
//! Overlapping lists of one course share one read and one list ([`super::flights`]), and
//! the lists that follow within `PRESENCE_LIST_CACHE_MS` share it too ([`super::cache`]).

use std::sync::Arc;

use futures::FutureExt;

use super::cache::Cache;
use super::flights::Flights;
use super::{Presence, PresenceStore, PresentUser, Scope};
use crate::error::{AppError, ErrorCode};
use crate::ids::{CourseId, TenantId};
use crate::types::{
    CoursePresence, PresenceCount, PresenceUser, PresenceUsers, Rfc3339Millis, TenantPresence,
};

/// The course lists in flight.
pub(super) type CourseLists = Flights<(TenantId, CourseId), Result<CoursePresence, AppError>>;
/// The course lists read lately.
pub(super) type CourseListCache = Cache<(TenantId, CourseId), CoursePresence>;

/// Most users a tenant-wide list carries (`?list=1`); the count is always exact.
pub const TENANT_LIST_MAX: usize = 1_000;
/// Most users a course list carries; the count is always exact.
pub const COURSE_LIST_MAX: usize = 20_000;

fn wire<C: FromIterator<PresenceUser>>(users: Vec<PresentUser>) -> C {
    users
        .into_iter()
        .map(|u| PresenceUser {
            user_id: u.user,
            role: u.role,
            since: Rfc3339Millis(u.since_ms),
        })
        .collect()
}

impl Presence {
    fn check_enabled(&self) -> Result<(), AppError> {
        if self.enabled() {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::Unavailable,
                "presence is disabled on this gateway (PRESENCE_ENABLED=false)",
            ))
        }
    }

    /// The online users of a course; callers that overlap share one answer, and an answer
    /// serves the calls after it for `PRESENCE_LIST_CACHE_MS` unless this node changes the
    /// course's presence first ([`super::cache`]).
    pub async fn course_list(
        &self,
        t: &TenantId,
        c: &CourseId,
    ) -> Result<CoursePresence, AppError> {
        self.check_enabled()?;
        let key = (t.clone(), c.clone());
        if let Some(answer) = self.list_cache.get(&key) {
            return Ok(answer);
        }
        let store = self.store().clone();
        let cache = self.list_cache.clone();
        let call = {
            let key = key.clone();
            move || {
                async move {
                    let read = cache.begin(key.clone());
                    let answer = read_course(store, key.0.clone(), key.1.clone()).await;
                    if let (Some(read), Ok(list)) = (read, &answer) {
                        cache.keep(&key, read, list.clone());
                    }
                    answer
                }
                .boxed()
            }
        };
        self.lists.run(key, call).await
    }

    /// This node changed who is present in `scope` (the store has it): a course's kept
    /// list goes.
    pub(super) fn changed(&self, scope: &Scope) {
        if let Scope::Course(t, c) = scope {
            self.list_cache.invalidate(&(t.clone(), c.clone()));
        }
    }

    /// How many users are online in a course.
    pub async fn course_count(
        &self,
        t: &TenantId,
        c: &CourseId,
    ) -> Result<PresenceCount, AppError> {
        self.check_enabled()?;
        let count = self
            .store()
            .count(&Scope::Course(t.clone(), c.clone()))
            .await?;
        Ok(PresenceCount {
            course_id: c.clone(),
            count,
        })
    }

    /// How many users are online in a tenant, and with `list` up to
    /// [`TENANT_LIST_MAX`] of them.
    pub async fn tenant(&self, t: &TenantId, list: bool) -> Result<TenantPresence, AppError> {
        self.check_enabled()?;
        let scope = Scope::Tenant(t.clone());
        let count = self.store().count(&scope).await?;
        let users = if list {
            Some(wire(self.store().list(&scope, TENANT_LIST_MAX).await?))
        } else {
            None
        };
        Ok(TenantPresence { count, users })
    }
}

/// One read of a course's online users.
async fn read_course(
    store: Arc<dyn PresenceStore>,
    t: TenantId,
    c: CourseId,
) -> Result<CoursePresence, AppError> {
    let scope = Scope::Course(t, c.clone());
    let users = store.list(&scope, COURSE_LIST_MAX).await?;
    let count = if users.len() < COURSE_LIST_MAX {
        users.len() as u64
    } else {
        store.count(&scope).await?
    };
    Ok(CoursePresence {
        course_id: c,
        users: PresenceUsers::encode(
            users
                .iter()
                .map(|u| (u.user.as_str(), u.role.as_str(), u.since_ms)),
        ),
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_rfc3339_in_utc_with_milliseconds() {
        let since = Rfc3339Millis(1_700_000_000_123);
        assert_eq!(since.to_string(), "2023-11-14T22:13:20.123Z");
    }
}
