//! Which gRPC services a package holds, read from govmedia's descriptor set: the gateway
//! routes every service of a package to the package's upstream, so a service added to
//! the contract is routed without a gateway change.

use prost::Message;

/// The full names (`package.Service`) of the services of `package`, sorted.
pub fn services_of(package: &str) -> Vec<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(govmedia_proto::FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    let mut names: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| f.service.iter().map(move |s| format!("{}.{}", f.package(), s.name())))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The paths (`/package.Service/Method`) of the methods of `package` whose request is a
/// stream: the gateway streams those through rather than holding them for a retry.
pub fn client_streaming_methods(package: &str) -> std::collections::HashSet<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(govmedia_proto::FILE_DESCRIPTOR_SET) else {
        return Default::default();
    };
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method
                    .iter()
                    .filter(|m| m.client_streaming())
                    .map(move |m| format!("/{}.{}/{}", f.package(), s.name(), m.name()))
            })
        })
        .collect()
}

/// The packages the gateway fronts, one upstream each.
pub const PACKAGES: [&str; 4] =
    ["govmedia.identity.v1", "govmedia.content.v1", "govmedia.interaction.v1", "govmedia.audit.v1"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_has_its_services() {
        let identity = services_of("govmedia.identity.v1");
        assert!(identity.contains(&"govmedia.identity.v1.AuthenticationService".to_owned()), "{identity:?}");
        assert_eq!(services_of("govmedia.interaction.v1").len(), 5);
        for package in PACKAGES {
            assert!(!services_of(package).is_empty(), "{package}");
        }
        assert!(services_of("no.such.v1").is_empty());
    }
}
