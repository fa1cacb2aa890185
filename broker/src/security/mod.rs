//! How connections are protected: TLS on the SSL listeners ([`tls`]), with
//! certificates and keys from the key and trust stores ([`store`]), the
//! SASL mechanisms that authenticate clients on SASL listeners ([`sasl`]),
//! who a TLS client with a certificate is ([`principal`]), and what an
//! authenticated principal may do ([`acl`]).

pub mod acl;
pub mod principal;
pub mod sasl;
pub mod store;
pub mod tls;
