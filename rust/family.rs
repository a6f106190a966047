//! What every family's table generates the same way: the member structs and the
//! enum that holds one member with its arguments.
//!
//! A family lists its members once, in a table macro (`activation_table!`,
//! `loss_table!`, `optimizer_table!`): one line per member,
//! `Name { arg: type = default, ... } "(python signature)";`. Its own
//! `define_members!` hands that list to [`family_members!`](crate::family_members)
//! and adds the dispatch of its kernels.

/// For `Enum` and a table's lines: one `pub struct Name { pub arg: type }` per
/// member with `Default` (the table's defaults) and `From<Name> for Enum`; the
/// `enum Enum { Name(Name), ... }`; and `Enum::NAMES` and `Enum::name()`.
#[macro_export]
macro_rules! family_members {
    ($enum:ident, $what:literal; $($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:literal;)*) => {
        $(
            $(#[$doc])*
            #[allow(clippy::upper_case_acronyms)] // the Python names
            #[derive(Clone, Copy, Debug, PartialEq)]
            pub struct $name {
                $(
                    #[allow(missing_docs)]
                    pub $arg: $ty,
                )*
            }

            impl Default for $name {
                fn default() -> $name {
                    $name { $($arg: $default),* }
                }
            }

            impl From<$name> for $enum {
                fn from(k: $name) -> $enum {
                    $enum::$name(k)
                }
            }
        )*

        #[doc = concat!("One member of the family, with its ", $what, ".")]
        #[allow(clippy::upper_case_acronyms)] // the Python names
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum $enum {
            $(
                $(#[$doc])*
                $name($name),
            )*
        }

        impl $enum {
            /// The class names of the members, in table order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// The class name, for error messages.
            pub fn name(&self) -> &'static str {
                match self {
                    $($enum::$name(_) => stringify!($name),)*
                }
            }
        }
    };
}
