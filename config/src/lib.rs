//! Tandem's profile: the YAML schema of a whole appliance, parsed with `yaml_serde` and validated completely
//! before anything starts. Owns nothing at run time; every other crate reads the validated [`Profile`].
#![forbid(unsafe_code)]
