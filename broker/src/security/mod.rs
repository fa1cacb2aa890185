//! How connections are protected: TLS on the SSL listeners ([`tls`]).
//! Authentication and authorization join here as they land.

pub mod tls;
