//! How connections are protected: TLS on the SSL listeners ([`tls`]), and
//! the SASL mechanisms that authenticate clients on SASL listeners
//! ([`sasl`]). Authorization joins here as it lands.

pub mod sasl;
pub mod tls;
