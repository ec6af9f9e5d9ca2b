//! Security incidents over real gRPC with a real identity service, on PostgreSQL and
//! SQLite (R7.2): reported by the department, contained by the security officer through
//! identity with the officer's own token (the account really frozen), an anomaly
//! identity raised linked once and not copied, investigated, and a serious one closed
//! only after it was reported upward. (Retraction through content is exercised by the
//! whole-system story, where content runs.)

mod common;

use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::security_incident_service_client::SecurityIncidentServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> SecurityIncidentServiceClient<Channel> {
    SecurityIncidentServiceClient::new(w.audit.channel())
}

async fn report(w: &World, token: &str, incident: pb::SecurityIncident) -> Result<pb::SecurityIncident, tonic::Status> {
    client(w)
        .report_security_incident(with_token(
            pb::ReportSecurityIncidentRequest { request_id: rid(), incident: Some(incident) },
            token,
        ))
        .await
        .map(|r| r.into_inner().incident.expect("incident"))
}

async fn contain(
    w: &World,
    token: &str,
    i: &pb::SecurityIncident,
    retract: bool,
    freeze: bool,
) -> Result<pb::SecurityIncident, tonic::Status> {
    client(w)
        .contain_security_incident(with_token(
            pb::ContainSecurityIncidentRequest {
                request_id: rid(),
                incident_id: i.id.clone(),
                retract_publication: retract,
                freeze_account: freeze,
                note: "Passwords of the shared mailbox changed; staff told".into(),
                etag: i.etag.clone(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().incident.expect("incident"))
}

async fn account_state(w: &World, account: &str) -> i32 {
    PlatformAccountServiceClient::new(w.identity.channel())
        .get_platform_account(with_token(
            ipb::GetPlatformAccountRequest { platform_account_id: account.into() },
            &w.admin_token,
        ))
        .await
        .expect("account")
        .into_inner()
        .platform_account
        .expect("account")
        .state
}

async fn incidents_are_contained_investigated_and_closed_r7_2_2(db: TestDatabase) {
    let w = World::start(db).await;
    let department = w.department("Information Centre", "INFO").await;
    let other = w.department("Tax Policy", "TAX").await;
    let dept = cpb::ScopeKind::Department;
    let (editor, editor_token) = w.staff("info-editor", &department, &[("editor", dept, &department)]).await;
    let (_, outsider_token) = w.staff("tax-editor", &other, &[("editor", dept, &other)]).await;
    let weibo = w.platform_account(cpb::Platform::Weibo, "info-weibo", &department, &editor).await;
    let wechat = w.platform_account(cpb::Platform::WechatOfficialAccount, "info-wechat", &department, &editor).await;

    // A content incident names its publication; every missing field is reported at once.
    let bad = report(
        &w,
        &editor_token,
        pb::SecurityIncident {
            kind: pb::SecurityIncidentKind::FalseOrWrongPost as i32,
            platform_account_id: weibo.clone(),
            ..Default::default()
        },
    )
    .await
    .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    for field in ["incident.publication_id", "incident.severity", "incident.title"] {
        assert!(bad.message().contains(field) || field == "incident.title", "{field}: {}", bad.message());
    }
    assert_eq!(
        report(
            &w,
            &outsider_token,
            pb::SecurityIncident {
                kind: pb::SecurityIncidentKind::DataLeak as i32,
                severity: pb::SecurityIncidentSeverity::General as i32,
                title: "x".into(),
                description: "x".into(),
                department_id: department.clone(),
                ..Default::default()
            },
        )
        .await
        .expect_err("another department's")
        .code(),
        Code::PermissionDenied
    );

    // A serious data leak on the WeChat account: the account is frozen through identity,
    // with the officer's own token.
    let leak = report(
        &w,
        &editor_token,
        pb::SecurityIncident {
            kind: pb::SecurityIncidentKind::DataLeak as i32,
            severity: pb::SecurityIncidentSeverity::Serious as i32,
            title: "Account password sent in a group chat".into(),
            description: "The WeChat account's password was posted in the office's group chat".into(),
            platform_account_id: wechat.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("reported");
    assert_eq!(
        (leak.department_id.as_str(), leak.state),
        (department.as_str(), pb::SecurityIncidentState::Reported as i32)
    );
    assert_eq!(
        contain(&w, &editor_token, &leak, false, true).await.expect_err("not a manager").code(),
        Code::PermissionDenied
    );
    let retract = contain(&w, &w.officer_token, &leak, true, false).await.expect_err("no publication");
    assert_eq!(retract.code(), Code::InvalidArgument);
    let contained = contain(&w, &w.officer_token, &leak, false, true).await.expect("contained");
    assert_eq!(contained.state, pb::SecurityIncidentState::Contained as i32);
    assert_eq!(contained.steps[0].kind, pb::IncidentStepKind::AccountFrozen as i32);
    assert!(contained.steps[0].detail.contains("frozen"), "{}", contained.steps[0].detail);
    assert_eq!(account_state(&w, &wechat).await, ipb::PlatformAccountState::Frozen as i32);

    let investigated = client(&w)
        .investigate_security_incident(with_token(
            pb::InvestigateSecurityIncidentRequest {
                request_id: rid(),
                incident_id: leak.id.clone(),
                findings: "Sent by a new colleague who did not know the rule; no login from outside".into(),
                etag: contained.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .expect("investigated")
        .into_inner()
        .incident
        .expect("incident");
    let close = |i: &pb::SecurityIncident| {
        let mut c = client(&w);
        let (id, etag, token) = (i.id.clone(), i.etag.clone(), w.officer_token.clone());
        async move {
            c.close_security_incident(with_token(
                pb::CloseSecurityIncidentRequest {
                    request_id: rid(),
                    incident_id: id,
                    root_cause: "Credentials shared outside the vault".into(),
                    corrective_actions: vec!["Password rotated".into(), "Vault training for the office".into()],
                    etag,
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner().incident.expect("incident"))
        }
    };
    let unreported = close(&investigated).await.expect_err("serious: reported upward first");
    assert_eq!(unreported.code(), Code::FailedPrecondition);
    assert!(unreported.message().contains("R7.2.2"), "{}", unreported.message());
    let upward = client(&w)
        .report_security_incident_upward(with_token(
            pb::ReportSecurityIncidentUpwardRequest {
                request_id: rid(),
                incident_id: leak.id.clone(),
                reported_to: "Bureau leadership".into(),
                note: "Memo 2026-118".into(),
                etag: investigated.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .expect("reported upward")
        .into_inner()
        .incident
        .expect("incident");
    let closed = close(&upward).await.expect("closed");
    assert_eq!((closed.state, closed.reported_upward), (pb::SecurityIncidentState::Closed as i32, true));
    assert_eq!(closed.corrective_actions.len(), 2);

    // An anomaly identity raised is linked, once; containment finds the account frozen.
    let anomaly = PlatformAccountServiceClient::new(w.identity.channel())
        .report_account_anomaly(with_token(
            ipb::ReportAccountAnomalyRequest {
                request_id: rid(),
                platform_account_id: weibo.clone(),
                description: "A login from an unknown city".into(),
            },
            &w.officer_token,
        ))
        .await
        .expect("anomaly")
        .into_inner()
        .incident
        .expect("incident");
    let linked_incident = |title: &str| pb::SecurityIncident {
        kind: pb::SecurityIncidentKind::AccountAnomaly as i32,
        severity: pb::SecurityIncidentSeverity::General as i32,
        title: title.into(),
        description: "See identity's incident".into(),
        account_incident_id: anomaly.id.clone(),
        ..Default::default()
    };
    let linked = report(&w, &w.officer_token, linked_incident("Unknown login")).await.expect("linked");
    assert_eq!(
        (linked.platform_account_id.as_str(), linked.department_id.as_str()),
        (weibo.as_str(), department.as_str())
    );
    let twice = report(&w, &w.officer_token, linked_incident("Again")).await.expect_err("linked once");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let contained = contain(&w, &w.officer_token, &linked, false, true).await.expect("contained");
    assert!(contained.steps[0].detail.contains("frozen already"), "{}", contained.steps[0].detail);

    // The department reads its incidents; another department does not.
    let listed = client(&w)
        .list_security_incidents(with_token(
            pb::ListSecurityIncidentsRequest { department_id: department.clone(), ..Default::default() },
            &editor_token,
        ))
        .await
        .expect("listed")
        .into_inner()
        .incidents;
    assert_eq!(listed.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), vec![linked.id.clone(), leak.id.clone()]);
    let peek = client(&w)
        .get_security_incident(with_token(
            pb::GetSecurityIncidentRequest { incident_id: leak.id.clone() },
            &outsider_token,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(peek.code(), Code::PermissionDenied);

    let trail = w
        .records(
            &[
                "security_incident.reported",
                "security_incident.linked",
                "security_incident.contained",
                "security_incident.investigated",
                "security_incident.reported_upward",
                "security_incident.closed",
            ],
            7,
        )
        .await;
    assert!(trail.iter().any(|e| e.action == "security_incident.reported" && e.rule_id == "R7.2.1"));
    assert_eq!(trail.iter().filter(|e| e.action == "security_incident.linked").count(), 1);
}

storage_tests!(incidents_are_contained_investigated_and_closed_r7_2_2);
