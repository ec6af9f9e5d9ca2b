//! The v1 API contract keeps its own conventions (Google API design guide, as written in
//! docs/api-conventions.md): every List method pages with page_size/page_token, every
//! mutation takes a request_id (or is idempotent by a natural key, listed below with
//! the reason), every Update takes an update_mask and its resource an etag, and every
//! service the contract declares is one the gateway and reflection know.

use std::collections::{BTreeSet, HashMap};

use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};

/// Mutations that are idempotent without a request_id, and why.
const IDEMPOTENT_BY_NATURE: &[(&str, &str)] = &[
    ("Login", "creates a session per call by design; nothing to repeat"),
    ("RefreshSession", "a refresh token is single-use: the token itself is the key"),
    ("Logout", "ending an ended session changes nothing"),
    ("ChangePassword", "a repeat fails on the current password, changing nothing"),
    ("ExchangeClientCredentials", "issues a token per call by design"),
    ("AppendEvents", "idempotent by event id"),
    ("IngestComments", "idempotent by the platform's comment id"),
    ("IngestPrivateMessages", "idempotent by the platform's message id"),
    ("RecordPublicationMetrics", "idempotent per publication and observation time"),
];

/// Methods that change nothing.
const READ_PREFIXES: &[&str] = &["Get", "List", "Query", "Export", "Verify", "Check", "BatchCheck", "Screen"];

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(govmedia_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

fn messages(set: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    let mut out = HashMap::new();
    for file in &set.file {
        let package = file.package();
        for message in &file.message_type {
            out.insert(format!(".{package}.{}", message.name()), message.clone());
        }
    }
    out
}

fn field<'a>(message: &'a DescriptorProto, name: &str) -> Option<&'a prost_types::FieldDescriptorProto> {
    message.field.iter().find(|f| f.name() == name)
}

fn govmedia_methods(set: &FileDescriptorSet) -> Vec<(String, prost_types::MethodDescriptorProto)> {
    set.file
        .iter()
        .filter(|f| f.package().starts_with("govmedia."))
        .flat_map(|f| {
            f.service
                .iter()
                .flat_map(move |s| s.method.iter().map(move |m| (format!("{}.{}", f.package(), s.name()), m.clone())))
        })
        .collect()
}

#[test]
fn every_declared_service_is_known_to_reflection_and_routing() {
    let set = descriptor_set();
    let declared: BTreeSet<String> = set
        .file
        .iter()
        .filter(|f| f.package().starts_with("govmedia."))
        .flat_map(|f| f.service.iter().map(move |s| format!("{}.{}", f.package(), s.name())))
        .collect();
    let listed: BTreeSet<String> = govmedia_proto::SERVICE_NAMES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(declared, listed, "govmedia_proto::SERVICE_NAMES must list exactly the declared services");
}

#[test]
fn list_methods_page_with_page_size_and_page_token() {
    let set = descriptor_set();
    let messages = messages(&set);
    for (service, method) in govmedia_methods(&set) {
        if !method.name().starts_with("List") || method.name() == "ListRoles" || method.name() == "ListSigningKeys" {
            continue;
        }
        let request = &messages[method.input_type()];
        let response = &messages[method.output_type()];
        let size = field(request, "page_size").unwrap_or_else(|| panic!("{service}.{} lacks page_size", method.name()));
        assert_eq!(size.r#type(), Type::Int32, "{service}.{}: page_size is int32", method.name());
        assert!(field(request, "page_token").is_some(), "{service}.{} lacks page_token", method.name());
        assert!(field(response, "next_page_token").is_some(), "{service}.{} lacks next_page_token", method.name());
    }
}

#[test]
fn mutations_take_a_request_id_or_are_idempotent_by_nature() {
    let set = descriptor_set();
    let messages = messages(&set);
    let mut exempt_seen = BTreeSet::new();
    let mut checked = 0;
    for (service, method) in govmedia_methods(&set) {
        let name = method.name();
        if READ_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        if IDEMPOTENT_BY_NATURE.iter().any(|(m, _)| *m == name) {
            exempt_seen.insert(name.to_owned());
            continue;
        }
        let request = &messages[method.input_type()];
        let request_id =
            field(request, "request_id").unwrap_or_else(|| panic!("{service}.{name} mutates but has no request_id"));
        assert_eq!(request_id.number(), 1, "{service}.{name}: request_id is field 1 by convention");
        checked += 1;
    }
    assert!(checked >= 70, "only {checked} mutations checked: is the descriptor set complete?");
    let listed: BTreeSet<_> = IDEMPOTENT_BY_NATURE.iter().map(|(m, _)| (*m).to_owned()).collect();
    assert_eq!(exempt_seen, listed, "an exemption names a method that no longer exists");
}

#[test]
fn updates_take_an_update_mask_and_their_resources_an_etag() {
    let set = descriptor_set();
    let messages = messages(&set);
    for (service, method) in govmedia_methods(&set) {
        let name = method.name();
        if !name.starts_with("Update") || name == "UpdateDraft" {
            // UpdateDraft replaces the whole content as a new version (etag on the request).
            continue;
        }
        let request = &messages[method.input_type()];
        assert!(field(request, "update_mask").is_some(), "{service}.{name} lacks update_mask");
        let resource = request
            .field
            .iter()
            .find(|f| f.r#type() == Type::Message && f.name() != "update_mask")
            .unwrap_or_else(|| panic!("{service}.{name} carries no resource"));
        let resource = &messages[resource.type_name()];
        assert!(field(resource, "etag").is_some(), "{service}.{name}: {} lacks an etag", resource.name());
    }
}

#[test]
fn enums_start_with_an_unspecified_zero() {
    let set = descriptor_set();
    for file in set.file.iter().filter(|f| f.package().starts_with("govmedia.")) {
        for e in &file.enum_type {
            let zero = e.value.iter().find(|v| v.number() == 0).unwrap_or_else(|| panic!("{} has no zero", e.name()));
            assert!(zero.name().ends_with("_UNSPECIFIED"), "{}: zero value {}", e.name(), zero.name());
        }
    }
}
