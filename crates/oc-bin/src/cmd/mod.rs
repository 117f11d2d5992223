//! One module per subcommand.

pub(crate) mod admin;
pub(crate) mod ceql;
pub(crate) mod ops;
pub(crate) mod sim;
pub(crate) mod template;
pub(crate) mod validate;
