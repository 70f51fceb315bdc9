//! Roles in a negotiation call and what each may do.

use serde::{Deserialize, Serialize};

/// A participant's role. The first four are the call's parties; `operator` watches from the booth hall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The exporting company, from a booth browser.
    Company,
    /// The interpreter, usually from home.
    Interpreter,
    /// The agency's overseas office, often relaying the interpretation.
    Office,
    /// The foreign buyer.
    Buyer,
    /// A hidden operator: watches call health, never publishes media, is not shown to the others.
    Operator,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Company,
        Role::Interpreter,
        Role::Office,
        Role::Buyer,
        Role::Operator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Company => "company",
            Role::Interpreter => "interpreter",
            Role::Office => "office",
            Role::Buyer => "buyer",
            Role::Operator => "operator",
        }
    }

    /// What this role may do in a call.
    pub fn permissions(self) -> Permissions {
        match self {
            Role::Operator => Permissions {
                publish: false,
                subscribe: true,
                hidden: true,
            },
            Role::Company | Role::Interpreter | Role::Office | Role::Buyer => Permissions {
                publish: true,
                subscribe: true,
                hidden: false,
            },
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?}; expected one of company, interpreter, office, buyer, operator")
            })
    }
}

/// What a participant may do. Derived from the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// May publish audio and video.
    pub publish: bool,
    /// May subscribe to others' publications.
    pub subscribe: bool,
    /// Not listed to the other participants, and joins and leaves silently.
    pub hidden: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_is_hidden_and_never_publishes() {
        let p = Role::Operator.permissions();
        assert!(!p.publish);
        assert!(p.hidden);
        assert!(p.subscribe);
    }

    #[test]
    fn parties_publish_and_are_visible() {
        for role in [Role::Company, Role::Interpreter, Role::Office, Role::Buyer] {
            let p = role.permissions();
            assert!(p.publish && p.subscribe && !p.hidden, "{role}");
        }
    }

    #[test]
    fn roles_round_trip_through_strings() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("janitor".parse::<Role>().is_err());
    }
}
