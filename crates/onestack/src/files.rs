//! The files `onestack up` writes for people: the admin password, `admin-openrc` and
//! `clouds.yaml`, all readable by the owner only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;

pub const ADMIN_PASSWORD: &str = "admin-password";
pub const ADMIN_OPENRC: &str = "admin-openrc";
pub const CLOUDS_YAML: &str = "clouds.yaml";
pub const CLOUD_ID: &str = "cloud-id";

/// Makes the data directory if needed, private to its owner (it holds the database with
/// password hashes, keys and user data, or a joined host's credential), and checks that
/// we can write to it.
pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let probe = dir.join(".write-test");
    fs::write(&probe, b"")?;
    fs::remove_file(&probe)
}

/// Writes a file readable by the owner only, atomically.
pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // `mode` only applies to a new file: a leftover `.tmp` keeps its own until told.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// The admin password chosen at first start, created if missing.
pub fn admin_password(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(ADMIN_PASSWORD);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let password: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(24)
                .map(char::from)
                .collect();
            write_private(&path, &format!("{password}\n"))?;
            Ok(password)
        }
        Err(e) => Err(e),
    }
}

/// This cloud's id, chosen at first start: 32 hex digits that mark what its agents make on
/// a host (see `onestack_netdrv::owner`), so two clouds on one host keep apart.
pub fn cloud_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(CLOUD_ID);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("{:032x}", rand::rng().random::<u128>());
            write_private(&path, &format!("{id}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// An openrc for `user` in `project`. Without a password, it asks for one when sourced.
pub fn openrc(auth_url: &str, user: &str, project: &str, password: Option<&str>) -> String {
    let password_line = match password {
        Some(p) => format!("export OS_PASSWORD={}\n", shell_quote(p)),
        None => format!(
            "read -rsp {} OS_PASSWORD && echo && export OS_PASSWORD\n",
            shell_quote(&format!("Password for {user}: "))
        ),
    };
    format!(
        "# onestack credentials for {user} in project {project}. Use: source this file\n\
         export OS_AUTH_URL={}\n\
         export OS_IDENTITY_API_VERSION=3\n\
         export OS_AUTH_TYPE=password\n\
         export OS_USERNAME={}\n\
         {password_line}\
         export OS_PROJECT_NAME={}\n\
         export OS_USER_DOMAIN_NAME=Default\n\
         export OS_PROJECT_DOMAIN_NAME=Default\n\
         export OS_REGION_NAME=RegionOne\n\
         export OS_INTERFACE=public\n",
        shell_quote(auth_url),
        shell_quote(user),
        shell_quote(project),
    )
}

pub fn clouds_yaml(auth_url: &str, password: &str) -> String {
    let quote = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
    format!(
        "clouds:\n  onestack:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {}\n      \
         project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
        quote(auth_url),
        quote(password)
    )
}

/// Writes `admin-openrc` and `clouds.yaml`; returns the openrc path.
pub fn write_client_files(
    data_dir: &Path,
    auth_url: &str,
    password: &str,
) -> std::io::Result<PathBuf> {
    let openrc_path = data_dir.join(ADMIN_OPENRC);
    write_private(
        &openrc_path,
        &openrc(auth_url, "admin", "admin", Some(password)),
    )?;
    write_private(
        &data_dir.join(CLOUDS_YAML),
        &clouds_yaml(auth_url, password),
    )?;
    Ok(openrc_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc_quotes_for_the_shell() {
        let rc = openrc("http://h/identity/v3", "admin", "admin", Some("it's"));
        assert!(rc.contains(r"export OS_PASSWORD='it'\''s'"), "{rc}");
        assert!(openrc("u", "demo", "demo", None).contains("read -rsp"));
    }

    #[test]
    fn the_admin_password_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = admin_password(dir.path()).unwrap();
        assert_eq!(first.len(), 24);
        assert_eq!(admin_password(dir.path()).unwrap(), first);
    }

    #[test]
    fn the_cloud_id_is_kept_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let id = cloud_id(dir.path()).unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(cloud_id(dir.path()).unwrap(), id);
        assert_ne!(cloud_id(tempfile::tempdir().unwrap().path()).unwrap(), id);
        let mode = fs::metadata(dir.path().join(CLOUD_ID))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_leftover_temp_file_does_not_widen_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(path.with_extension("tmp"), "old").unwrap();
        fs::set_permissions(
            path.with_extension("tmp"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        write_private(&path, "new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
