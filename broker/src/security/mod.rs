//! How connections are protected: TLS on the SSL listeners ([`tls`]), the
//! SASL mechanisms that authenticate clients on SASL listeners ([`sasl`]),
//! and who a TLS client with a certificate is ([`principal`]).
//! Authorization joins here as it lands.

pub mod principal;
pub mod sasl;
pub mod tls;
