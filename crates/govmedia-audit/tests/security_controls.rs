//! The register of security controls over real gRPC with a real identity service, on
//! PostgreSQL and SQLite (R7.2.1): controls per asset, verified with evidence, overdue
//! past their interval or never verified, retired with a reason; only the security
//! officer changes the register.

mod common;

use common::World;
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::security_control_service_client::SecurityControlServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn client(w: &World) -> SecurityControlServiceClient<Channel> {
    SecurityControlServiceClient::new(w.audit.channel())
}

async fn add(w: &World, token: &str, control: pb::SecurityControl) -> Result<pb::SecurityControl, tonic::Status> {
    client(w)
        .create_security_control(with_token(
            pb::CreateSecurityControlRequest { request_id: rid(), security_control: Some(control) },
            token,
        ))
        .await
        .map(|r| r.into_inner().security_control.expect("control"))
}

async fn overdue(w: &World) -> Vec<String> {
    client(w)
        .list_security_controls(with_token(
            pb::ListSecurityControlsRequest { overdue_only: true, ..Default::default() },
            &w.auditor_token,
        ))
        .await
        .expect("listed")
        .into_inner()
        .security_controls
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn controls_are_verified_with_evidence_and_overdue_past_their_interval_r7_2_1(db: TestDatabase) {
    let w = World::start(db).await;
    let department = w.department("Information Centre", "INFO").await;
    let (owner, _) = w.staff("info-owner", &department, &[]).await;
    let account = w.platform_account(cpb::Platform::Weibo, "info-weibo", &department, &owner).await;
    let firewall = pb::SecurityControl {
        asset_type: pb::AssetType::Server as i32,
        asset_id: "web-01".into(),
        asset_name: "Publishing server".into(),
        control_type: pb::ControlType::Firewall as i32,
        description: "Only 443 inbound; management from the office VLAN".into(),
        status: pb::ControlStatus::InPlace as i32,
        verify_interval_days: 30,
        ..Default::default()
    };
    assert_eq!(
        add(&w, &w.auditor_token, firewall.clone()).await.expect_err("officer only").code(),
        Code::PermissionDenied
    );
    let bad = add(
        &w,
        &w.officer_token,
        pb::SecurityControl {
            asset_type: pb::AssetType::PlatformAccount as i32,
            asset_id: "web-01".into(),
            verify_interval_days: 0,
            ..firewall.clone()
        },
    )
    .await
    .expect_err("invalid");
    let fields: Vec<String> =
        bad.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["security_control.asset_id", "security_control.verify_interval_days"]);

    let fw = add(&w, &w.officer_token, firewall).await.expect("registered");
    let two_factor = add(
        &w,
        &w.officer_token,
        pb::SecurityControl {
            asset_type: pb::AssetType::PlatformAccount as i32,
            asset_id: account.clone(),
            asset_name: "info-weibo".into(),
            control_type: pb::ControlType::TwoFactorLogin as i32,
            description: "Login needs the responsible person's phone".into(),
            status: pb::ControlStatus::InPlace as i32,
            verify_interval_days: 90,
            department_id: department.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("registered");
    assert!(fw.overdue && two_factor.overdue, "never verified: overdue until someone checks");
    let mut expected = vec![fw.id.clone(), two_factor.id.clone()];
    expected.sort();
    let mut listed = overdue(&w).await;
    listed.sort();
    assert_eq!(listed, expected);

    let verify = |c: pb::SecurityControl, status: pb::ControlStatus, evidence: &str| {
        let mut client = client(&w);
        let (token, evidence) = (w.officer_token.clone(), evidence.to_owned());
        async move {
            client
                .verify_security_control(with_token(
                    pb::VerifySecurityControlRequest {
                        request_id: rid(),
                        security_control_id: c.id,
                        status: status as i32,
                        evidence,
                        etag: c.etag,
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().security_control.expect("control"))
        }
    };
    let checked = verify(fw.clone(), pb::ControlStatus::Partial, "Rule 12 still allows 22 from anywhere; ticket 4711")
        .await
        .expect("verified");
    assert!(!checked.overdue);
    assert_eq!(checked.status, pb::ControlStatus::Partial as i32);
    assert!(checked.next_verify_time.is_some());
    assert_eq!(overdue(&w).await, std::slice::from_ref(&two_factor.id));
    // As if the last verification was 31 days ago.
    w.sql(&format!(
        "UPDATE security_controls SET verified_at = '2026-01-01T00:00:00+00:00', next_due_at = '2026-01-31T00:00:00+00:00' WHERE id = '{}'",
        fw.id
    ))
    .await;
    let mut both = overdue(&w).await;
    both.sort();
    assert_eq!(both, expected);

    let retired = client(&w)
        .retire_security_control(with_token(
            pb::RetireSecurityControlRequest {
                request_id: rid(),
                security_control_id: two_factor.id.clone(),
                reason: "The account moved to the platform's enterprise login".into(),
                etag: two_factor.etag.clone(),
            },
            &w.officer_token,
        ))
        .await
        .expect("retired")
        .into_inner()
        .security_control
        .expect("control");
    assert_eq!((retired.status, retired.overdue), (pb::ControlStatus::Retired as i32, false));
    assert_eq!(overdue(&w).await, std::slice::from_ref(&fw.id));
    let again = verify(retired, pb::ControlStatus::InPlace, "x").await.expect_err("retired");
    assert_eq!(again.code(), Code::FailedPrecondition);

    let trail =
        w.records(&["security_control.created", "security_control.verified", "security_control.retired"], 4).await;
    assert!(trail.iter().all(|e| e.rule_id == "R7.2.1"));
    assert!(trail.iter().any(|e| e.action == "security_control.retired"
        && e.resource.as_ref().is_some_and(|r| r.platform_account_id == account)));
}

storage_tests!(controls_are_verified_with_evidence_and_overdue_past_their_interval_r7_2_1);
