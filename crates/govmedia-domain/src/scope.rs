//! Scopes of role bindings and the resources permission checks are about (R2.2.1).
//!
//! A binding scoped to a department covers the resources that department owns; one
//! scoped to a platform account covers the resources that target that account; a global
//! one covers everything. The caller of a check says which department and account the
//! resource belongs to.

use std::fmt;

use crate::ids::{DepartmentId, PlatformAccountId};

/// The kind of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    /// The whole bureau.
    Global,
    /// One department.
    Department,
    /// One platform account.
    PlatformAccount,
}

impl ScopeKind {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Global => "global",
            ScopeKind::Department => "department",
            ScopeKind::PlatformAccount => "platform_account",
        }
    }
}

/// Where a role binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everywhere.
    Global,
    /// Resources owned by one department.
    Department(DepartmentId),
    /// Resources targeting one platform account.
    PlatformAccount(PlatformAccountId),
}

impl Scope {
    /// The scope's kind.
    pub const fn kind(&self) -> ScopeKind {
        match self {
            Scope::Global => ScopeKind::Global,
            Scope::Department(_) => ScopeKind::Department,
            Scope::PlatformAccount(_) => ScopeKind::PlatformAccount,
        }
    }

    /// True when a binding in this scope covers the resource.
    pub fn covers(&self, resource: &Resource) -> bool {
        match self {
            Scope::Global => true,
            Scope::Department(d) => resource.department == Some(*d),
            Scope::PlatformAccount(a) => resource.platform_account == Some(*a),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Department(d) => write!(f, "department {d}"),
            Scope::PlatformAccount(a) => write!(f, "platform account {a}"),
        }
    }
}

/// What a permission check is about: the department owning the resource and the
/// platform account it targets, either or both unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Resource {
    /// The owning department.
    pub department: Option<DepartmentId>,
    /// The targeted platform account.
    pub platform_account: Option<PlatformAccountId>,
}

impl std::fmt::Display for Resource {
    /// The narrowest thing it names: `platform_account/…`, `department/…` or `bureau`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.platform_account, self.department) {
            (Some(a), _) => write!(f, "platform_account/{a}"),
            (None, Some(d)) => write!(f, "department/{d}"),
            (None, None) => f.write_str("bureau"),
        }
    }
}

impl Resource {
    /// A resource tied to no department or account: only global bindings cover it.
    pub const GLOBAL: Resource = Resource { department: None, platform_account: None };

    /// A resource owned by a department.
    pub fn department(department: DepartmentId) -> Self {
        Self { department: Some(department), platform_account: None }
    }

    /// A resource targeting an account (and owned by the account's department, if known).
    pub fn platform_account(account: PlatformAccountId, department: Option<DepartmentId>) -> Self {
        Self { department, platform_account: Some(account) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_only_their_own_resources_r2_2_1() {
        let d1 = DepartmentId::new();
        let d2 = DepartmentId::new();
        let a1 = PlatformAccountId::new();
        let on_a1_in_d1 = Resource::platform_account(a1, Some(d1));
        assert!(Scope::Global.covers(&Resource::GLOBAL));
        assert!(Scope::Department(d1).covers(&on_a1_in_d1));
        assert!(!Scope::Department(d2).covers(&on_a1_in_d1));
        assert!(Scope::PlatformAccount(a1).covers(&on_a1_in_d1));
        assert!(!Scope::PlatformAccount(PlatformAccountId::new()).covers(&on_a1_in_d1));
        assert!(!Scope::Department(d1).covers(&Resource::GLOBAL));
    }
}
