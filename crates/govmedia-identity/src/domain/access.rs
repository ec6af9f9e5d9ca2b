//! The access decision (R2.2.1, R2.2.2, R6.1.1): a principal holds a permission on a
//! resource when one of its role bindings carries the permission in a scope covering the
//! resource. And the rules for granting: nobody grants a role to themselves, only an
//! administrator grants the administrator role, a role is bound only in the scopes it
//! allows, and a granter needs `role_binding.manage` covering the binding's scope.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{PrincipalId, RoleBindingId};
use govmedia_domain::permission::{Permission, Role};
use govmedia_domain::scope::{Resource, Scope};

/// The rule that scoped, separated roles serve.
pub const RULE: &str = "R2.2.1";

/// A role given to a principal in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The binding id.
    pub id: RoleBindingId,
    /// Who holds it.
    pub principal: PrincipalId,
    /// The role.
    pub role: Role,
    /// Where it applies.
    pub scope: Scope,
    /// Who granted it.
    pub granted_by: PrincipalId,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Why a permission was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No binding covers it.
    NoBinding,
    /// The principal is disabled.
    PrincipalDisabled,
    /// The principal does not exist.
    PrincipalUnknown,
    /// The permission is not in the catalogue.
    UnknownPermission,
    /// The user must change their password first.
    PasswordChangeRequired,
    /// The session the question was asked in has ended (or is not the principal's).
    SessionEnded,
}

/// The answer to a permission question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Granted by this binding.
    Allowed(Binding),
    /// Denied, with a sentence for people.
    Denied(Denial, String),
}

impl Decision {
    /// True when allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    /// `Ok` when allowed, else PERMISSION_DENIED naming the permission.
    pub fn require(self, permission: Permission) -> Result<Binding, Error> {
        match self {
            Decision::Allowed(binding) => Ok(binding),
            Decision::Denied(_, explanation) => Err(Error::denied(permission, explanation)),
        }
    }
}

/// The roles that carry `permission`, for explanations.
pub fn roles_granting(permission: Permission) -> Vec<Role> {
    Role::ALL.iter().copied().filter(|r| r.grants(permission)).collect()
}

fn describe_resource(resource: &Resource) -> String {
    match (resource.department, resource.platform_account) {
        (None, None) => "the whole bureau".to_owned(),
        (Some(d), None) => format!("department {d}"),
        (None, Some(a)) => format!("platform account {a}"),
        (Some(d), Some(a)) => format!("platform account {a} of department {d}"),
    }
}

/// Decides whether `bindings` (all of one active principal's) carry `permission` on
/// `resource`. The oldest covering binding is named as the grant.
pub fn decide(bindings: &[Binding], permission: Permission, resource: &Resource) -> Decision {
    let mut covering: Vec<&Binding> =
        bindings.iter().filter(|b| b.role.grants(permission) && b.scope.covers(resource)).collect();
    covering.sort_by_key(|b| (b.created_at, b.id));
    match covering.first() {
        Some(binding) => Decision::Allowed((*binding).clone()),
        None => {
            let roles: Vec<_> = roles_granting(permission).iter().map(|r| r.as_str()).collect();
            Decision::Denied(
                Denial::NoBinding,
                format!(
                    "{permission} on {} needs one of the roles [{}] bound globally or in a scope covering it",
                    describe_resource(resource),
                    roles.join(", ")
                ),
            )
        }
    }
}

/// The resource a binding's scope is: what a granter's authority must cover.
pub fn scope_as_resource(scope: &Scope, account_department: Option<govmedia_domain::ids::DepartmentId>) -> Resource {
    match scope {
        Scope::Global => Resource::GLOBAL,
        Scope::Department(d) => Resource::department(*d),
        Scope::PlatformAccount(a) => Resource::platform_account(*a, account_department),
    }
}

/// The roles no one person may combine: system administrator, security officer and
/// auditor (三员分立, the separation Chinese government information systems require).
pub const THREE_OFFICERS: [Role; 3] = [Role::Administrator, Role::SecurityOfficer, Role::Auditor];

/// The roles of the three review stages (R3.2.2): on one scope a person holds at most
/// one, so the stages stay three people's decisions wherever that scope reaches.
pub const REVIEW_STAGE_ROLES: [Role; 3] = [Role::DepartmentReviewer, Role::SupervisingLeader, Role::PrincipalLeader];

/// Checks that `granter` (holding `granter_bindings`) may grant `role` in `scope` to
/// `grantee` (holding `grantee_bindings`); `scope_resource` is the scope as a resource
/// (see [`scope_as_resource`]).
pub fn check_grant(
    granter: PrincipalId,
    granter_bindings: &[Binding],
    grantee: PrincipalId,
    grantee_bindings: &[Binding],
    role: Role,
    scope: &Scope,
    scope_resource: &Resource,
) -> Result<(), Error> {
    if granter == grantee {
        return Err(Error::rule(RULE, format!("principal/{grantee}"), "nobody grants a role to themselves"));
    }
    if role == Role::GovmediaService {
        // It may append to the audit log: a principal an administrator could make
        // would let them write events in anyone's name (issue 18).
        return Err(Error::rule(
            "R2.2.2",
            format!("role/{role}"),
            "govmedia_service belongs only to the installation's own services and is given when they are \
             provisioned (govmedia up, govmedia provision), never by a role grant",
        ));
    }
    if !role.allowed_scope_kinds().contains(&scope.kind()) {
        let allowed: Vec<_> = role.allowed_scope_kinds().iter().map(|k| k.as_str()).collect();
        return Err(Error::invalid(
            "role_binding.scope.kind",
            format!("role {role} can be bound only in scopes: {}", allowed.join(", ")),
        ));
    }
    // The three officers (三员分立): the one who administers, the one who keeps security
    // and the one who audits them are three people, so nobody audits their own acts.
    if let Some(held) = THREE_OFFICERS
        .contains(&role)
        .then(|| grantee_bindings.iter().find(|b| b.role != role && THREE_OFFICERS.contains(&b.role)))
        .flatten()
    {
        return Err(Error::rule(
            RULE,
            format!("principal/{grantee}"),
            format!(
                "the administrator, the security officer and the auditor are three different people \
                 (三员分立): {grantee} already holds {}, so {role} cannot be granted too",
                held.role
            ),
        ));
    }
    if let Some(held) = REVIEW_STAGE_ROLES
        .contains(&role)
        .then(|| {
            grantee_bindings
                .iter()
                .find(|b| b.role != role && REVIEW_STAGE_ROLES.contains(&b.role) && b.scope == *scope)
        })
        .flatten()
    {
        return Err(Error::rule(
            "R3.2.2",
            format!("principal/{grantee}"),
            format!(
                "one person reviews at one stage: {grantee} already holds {} on this scope, so {role} cannot be \
                 granted on it too",
                held.role
            ),
        ));
    }
    if role == Role::Administrator
        && !granter_bindings.iter().any(|b| b.role == Role::Administrator && b.scope == Scope::Global)
    {
        return Err(Error::rule(RULE, format!("role/{role}"), "only an administrator grants the administrator role"));
    }
    decide(granter_bindings, Permission::RoleBindingManage, scope_resource).require(Permission::RoleBindingManage)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use govmedia_domain::ids::{DepartmentId, PlatformAccountId, UserId};

    use super::*;

    fn binding(principal: PrincipalId, role: Role, scope: Scope) -> Binding {
        Binding {
            id: RoleBindingId::new(),
            principal,
            role,
            scope,
            granted_by: PrincipalId::from(UserId::new()),
            reason: "test".into(),
            created_at: Utc::now(),
        }
    }

    fn principal() -> PrincipalId {
        PrincipalId::from(UserId::new())
    }

    #[test]
    fn a_department_reviewer_reviews_only_in_their_department_r2_2_1() {
        let d1 = DepartmentId::new();
        let d2 = DepartmentId::new();
        let p = principal();
        let bindings = vec![binding(p, Role::DepartmentReviewer, Scope::Department(d1))];
        let decision = decide(&bindings, Permission::DraftReviewDepartment, &Resource::department(d1));
        assert!(decision.is_allowed());
        let decision = decide(&bindings, Permission::DraftReviewDepartment, &Resource::department(d2));
        let Decision::Denied(Denial::NoBinding, why) = decision else { panic!("must be denied") };
        assert!(why.contains("department_reviewer"), "{why}");
        assert!(!decide(&bindings, Permission::DraftApprovePrincipal, &Resource::department(d1)).is_allowed());
    }

    #[test]
    fn an_account_publisher_publishes_only_on_that_account_r2_2_1() {
        let a1 = PlatformAccountId::new();
        let p = principal();
        let bindings = vec![binding(p, Role::Publisher, Scope::PlatformAccount(a1))];
        assert!(decide(&bindings, Permission::PublicationSchedule, &Resource::platform_account(a1, None)).is_allowed());
        assert!(
            !decide(
                &bindings,
                Permission::PublicationSchedule,
                &Resource::platform_account(PlatformAccountId::new(), None)
            )
            .is_allowed()
        );
    }

    #[test]
    fn nobody_grants_a_role_to_themselves_r2_2_1() {
        let admin = principal();
        let bindings = vec![binding(admin, Role::Administrator, Scope::Global)];
        let err = check_grant(admin, &bindings, admin, &[], Role::Editor, &Scope::Global, &Resource::GLOBAL)
            .expect_err("self");
        assert!(matches!(err, Error::RuleViolated(ref v) if v[0].rule_id == RULE), "{err:?}");
    }

    #[test]
    fn only_an_administrator_grants_administrator_r2_2_1() {
        let d = DepartmentId::new();
        let manager = principal();
        // A department-scoped role manager does not exist in the catalogue; an auditor
        // has no role_binding.manage at all.
        let auditor = vec![binding(manager, Role::Auditor, Scope::Global)];
        let err =
            check_grant(manager, &auditor, principal(), &[], Role::Administrator, &Scope::Global, &Resource::GLOBAL)
                .expect_err("not an admin");
        assert!(matches!(err, Error::RuleViolated(_)), "{err:?}");
        let err = check_grant(
            manager,
            &auditor,
            principal(),
            &[],
            Role::Editor,
            &Scope::Department(d),
            &Resource::department(d),
        )
        .expect_err("no role_binding.manage");
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");

        let admin = principal();
        let admins = vec![binding(admin, Role::Administrator, Scope::Global)];
        check_grant(admin, &admins, principal(), &[], Role::Administrator, &Scope::Global, &Resource::GLOBAL)
            .expect("admin grants admin");
    }

    #[test]
    fn roles_bind_only_in_their_allowed_scopes() {
        let admin = principal();
        let admins = vec![binding(admin, Role::Administrator, Scope::Global)];
        let d = DepartmentId::new();
        let err = check_grant(
            admin,
            &admins,
            principal(),
            &[],
            Role::Auditor,
            &Scope::Department(d),
            &Resource::department(d),
        )
        .expect_err("auditor is global only");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }

    #[test]
    fn administrator_security_officer_and_auditor_are_three_people_r2_2_1() {
        let admin = principal();
        let admins = vec![binding(admin, Role::Administrator, Scope::Global)];
        let someone = principal();
        for (held, granted) in [
            (Role::Administrator, Role::Auditor),
            (Role::Auditor, Role::Administrator),
            (Role::SecurityOfficer, Role::Auditor),
            (Role::Administrator, Role::SecurityOfficer),
        ] {
            let holds = vec![binding(someone, held, Scope::Global)];
            let err = check_grant(admin, &admins, someone, &holds, granted, &Scope::Global, &Resource::GLOBAL)
                .expect_err("two officers in one person");
            assert!(matches!(err, Error::RuleViolated(ref v) if v[0].description.contains("三员分立")), "{err:?}");
        }
        // Any other role beside one officer role is fine, and so is holding it twice.
        let auditor = vec![binding(someone, Role::Auditor, Scope::Global)];
        check_grant(admin, &admins, someone, &auditor, Role::Editor, &Scope::Global, &Resource::GLOBAL)
            .expect("an auditor may also edit");
    }

    #[test]
    fn one_person_holds_one_review_stage_on_a_scope_r3_2_2() {
        let admin = principal();
        let admins = vec![binding(admin, Role::Administrator, Scope::Global)];
        let someone = principal();
        let d = DepartmentId::new();
        let reviewer = vec![binding(someone, Role::DepartmentReviewer, Scope::Department(d))];
        let err = check_grant(
            admin,
            &admins,
            someone,
            &reviewer,
            Role::SupervisingLeader,
            &Scope::Department(d),
            &Resource::department(d),
        )
        .expect_err("two stages on one scope");
        assert!(matches!(err, Error::RuleViolated(ref v) if v[0].rule_id == "R3.2.2"), "{err:?}");
        // On another scope it is allowed (each version is still signed by distinct people
        // per stage, checked when they review).
        check_grant(admin, &admins, someone, &reviewer, Role::SupervisingLeader, &Scope::Global, &Resource::GLOBAL)
            .expect("another scope");
        let leader = vec![binding(someone, Role::SupervisingLeader, Scope::Global)];
        assert!(
            check_grant(admin, &admins, someone, &leader, Role::PrincipalLeader, &Scope::Global, &Resource::GLOBAL)
                .is_err(),
            "two global stages"
        );
    }

    #[test]
    fn the_principal_leader_is_bureau_wide_only_r3_2_2() {
        let admin = principal();
        let admins = vec![binding(admin, Role::Administrator, Scope::Global)];
        let d = DepartmentId::new();
        let err = check_grant(
            admin,
            &admins,
            principal(),
            &[],
            Role::PrincipalLeader,
            &Scope::Department(d),
            &Resource::department(d),
        )
        .expect_err("主要领导 is the bureau's");
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
}
