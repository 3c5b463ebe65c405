//! A throwaway certificate authority for TLS sandboxes and tests.
//!
//! Node certificates carry both serverAuth and clientAuth: with `tls-cluster yes` and
//! `tls-replication yes` a node presents its server certificate as the *client* certificate on
//! the cluster bus and the replication link, and a serverAuth-only certificate leaves peers
//! stuck in `handshake` with nothing logged at the default level.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A subject of its own for every certificate: a leaf whose subject equals its issuer's is
/// taken for self-signed by OpenSSL, and the servers then reject it.
fn subject(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "clustersmith sandbox");
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes a file readable by its owner only (0600): keys, passwords, configs holding them. The
/// mode is set at creation, so the content is never readable by others, and reset on an
/// existing file, which `open` would leave as it was.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

fn write_key(path: &Path, pem: &str) -> Result<(), String> {
    write_private(path, pem).map_err(|e| format!("write `{}`: {e}", path.display()))
}

/// Paths of one certificate and its key.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Defects a certificate can be issued with.
#[derive(Clone, Copy, Debug, Default)]
pub struct CertOptions {
    /// Valid only in 2020.
    pub expired: bool,
    /// serverAuth without clientAuth: fine for clients, breaks `tls-cluster` and
    /// `tls-replication`.
    pub server_auth_only: bool,
}

/// A CA that signs certificates for loopback names.
pub struct TestCa {
    pub ca_cert: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// Creates a CA and writes its certificate to `dir/ca.crt`.
    pub fn create(dir: &Path) -> Result<TestCa, String> {
        let err = |e: rcgen::Error| format!("failed to generate the test CA: {e}");
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name = subject("clustersmith throwaway CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(err)?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let ca_cert = dir.join("ca.crt");
        std::fs::write(&ca_cert, cert.pem()).map_err(|e| e.to_string())?;
        Ok(TestCa {
            ca_cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// Issues a certificate for `names` (IP literals become IP SANs) into `dir/<stem>.crt/.key`.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> Result<CertFiles, String> {
        self.issue_with(dir, stem, names, CertOptions::default())
    }

    /// Like [`TestCa::issue`], with the defects tests need to show.
    pub fn issue_with(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        options: CertOptions,
    ) -> Result<CertFiles, String> {
        let err = |e: rcgen::Error| format!("failed to issue a test certificate: {e}");
        let key = KeyPair::generate().map_err(err)?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(err)?;
        params.distinguished_name = subject(stem);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if !options.server_auth_only {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        if options.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let files = CertFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).map_err(|e| e.to_string())?;
        write_key(&files.key, &key.serialize_pem())?;
        Ok(files)
    }
}
