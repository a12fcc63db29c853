//! The environment the doctor checks: the process environment, with the
//! variables of an env file (what `vercel env pull` writes) over it.
//!
//! The file wins for the keys it contains, as `scripts/migrate`'s `source`
//! does; every other key comes from the process environment. So a pulled
//! file is checked as the deployment sees it, and a variable the file lacks
//! can still be supplied on the command line. A stray shell variable (an
//! `AWS_ACCESS_KEY_ID` of your own, say) is therefore seen too: the
//! `AWS credentials` check names the source it picked.

use std::collections::HashMap;
use std::path::Path;

use moc_shared::box_error::BoxError;

#[derive(Debug, Clone, Default)]
pub struct DoctorEnv {
    vars: HashMap<String, String>,
}

impl DoctorEnv {
    /// The process environment, with `file`'s variables over it.
    pub fn load(file: Option<&Path>) -> Result<Self, BoxError> {
        let mut env = Self::from_pairs(std::env::vars());
        if let Some(file) = file {
            env.overlay_file(file)?;
        }
        Ok(env)
    }

    /// Exactly these variables, nothing from the process (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Puts `file`'s variables (dotenv syntax, as `vercel env pull` writes
    /// it: `KEY="value"`, `#` comments) over the current ones.
    pub fn overlay_file(&mut self, file: &Path) -> Result<(), BoxError> {
        let entries = dotenvy::from_path_iter(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        for entry in entries {
            let (key, value) = entry.map_err(|e| format!("{}: {e}", file.display()))?;
            self.vars.insert(key, value);
        }
        Ok(())
    }

    /// A variable's value; empty counts as unset, as for the functions.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|value| !value.trim().is_empty())
            .cloned()
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }
}
