//! The shared vocabulary of govmedia: typed ids, the role and permission catalogue,
//! scopes, workflow states, validation helpers, the audit action catalogue, the clock,
//! and the one error type every service returns (mapped to a rich gRPC status in
//! [`error`]).
//!
//! No I/O lives here: no database, no network, no files. Every rule in this crate is a
//! pure function a unit test can call. Services depend on it; it depends on nothing of
//! theirs.

pub mod audit;
pub mod clock;
pub mod error;
pub mod holidays;
pub mod ids;
pub mod page;
pub mod permission;
pub mod personal;
pub mod scope;
pub mod screening;
pub mod validate;
pub mod workflow;

pub use error::{Error, Result};

/// A closed set of names stored as text: the enum, `ALL`, `as_str` (the stored form) and
/// `parse` (back from it), for states and kinds kept in TEXT columns.
///
/// ```
/// govmedia_domain::text_enum! {
///     /// A colour.
///     Colour {
///         /// Red.
///         Red => "red",
///     }
/// }
/// assert_eq!(Colour::parse("red"), Some(Colour::Red));
/// ```
#[macro_export]
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored form.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// From the stored form.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}
