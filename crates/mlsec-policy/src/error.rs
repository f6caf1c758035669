/// Errors of the policy area: a policy that does not parse or validate, or a malformed name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy does not parse: {0}")]
    Parse(String),
    #[error("policy does not validate against the mlsec schema: {0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("policy test cases: {0}")]
    Cases(String),
}
