//! How connections are protected: TLS on the SSL listeners ([`tls`]), the
//! SASL mechanisms that authenticate clients on SASL listeners ([`sasl`]),
//! who a TLS client with a certificate is ([`principal`]), and what an
//! authenticated principal may do ([`acl`]).

pub mod acl;
pub mod principal;
pub mod sasl;
pub mod tls;
