//! Opens the object store that a checkpoint location names: a local folder (a path or
//! `file://`), `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use super::redact::{has_credentials, redact};
use crate::error::{Error, Result};

/// The job setting every location error names.
const SETTING: &str = "checkpoint.location";

/// How an object store location is reached: retries, timeouts, and settings that win over
/// the environment. Local folders ignore it.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Retries of transient failures (5xx, 429, timeouts, refused or reset connections).
    pub retry: RetryConfig,
    /// The most one request may take, from connecting to the last byte of the response;
    /// `None`: what the environment says (`AWS_TIMEOUT`, `GOOGLE_TIMEOUT`, `AZURE_TIMEOUT`),
    /// else `object_store`'s 30 s.
    pub request_timeout: Option<Duration>,
    /// The most establishing a connection may take; `None`: the environment's
    /// (`AWS_CONNECT_TIMEOUT`, ...), else `object_store`'s 5 s.
    pub connect_timeout: Option<Duration>,
    /// `object_store` settings by their key names (`aws_endpoint`, `google_service_account`,
    /// `azure_storage_account_name`, ...), applied over what the environment says.
    pub settings: Vec<(String, String)>,
}

/// How long a request is retried before it fails (see [`StoreOptions::default`]).
pub const RETRY_BUDGET: Duration = Duration::from_secs(60);

impl Default for StoreOptions {
    /// A request that fails transiently is retried for [`RETRY_BUDGET`] (60 s), however many
    /// tries that takes: a count of tries would be spent in a second or two against a store
    /// that refuses connections (`object_store` retries those at once, then after 100 ms,
    /// 200 ms...), whereas a store restarting or failing over is back within tens of seconds.
    /// Waits start at 100 ms and double (with jitter) up to 2 s, so a store that is back is
    /// used again within about 2 s. 60 s also stays well below the ~5 min after which a
    /// retried request's signature would expire; a checkpoint that still fails is then
    /// tolerated (`checkpoint.tolerable_failures`) and taken again later.
    fn default() -> Self {
        let backoff = BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        };
        // Never the limit: even waiting only the first backoff every time, this many
        // retries fill the budget.
        let max_retries = (RETRY_BUDGET.as_millis() / backoff.init_backoff.as_millis()) as usize;
        StoreOptions {
            retry: RetryConfig {
                backoff,
                max_retries,
                retry_timeout: RETRY_BUDGET,
            },
            request_timeout: None,
            connect_timeout: None,
            settings: Vec::new(),
        }
    }
}

impl StoreOptions {
    /// These options with `key` set to `value`, over the environment.
    pub fn with_setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }
}

/// A location, parsed.
#[derive(Debug, PartialEq)]
enum Location<'a> {
    Folder(&'a str),
    Bucket {
        cloud: Cloud,
        bucket: &'a str,
        prefix: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cloud {
    S3,
    Gcs,
    Azure,
}

impl Cloud {
    fn from_scheme(scheme: &str) -> Option<Cloud> {
        match scheme {
            "s3" => Some(Cloud::S3),
            "gs" => Some(Cloud::Gcs),
            "az" => Some(Cloud::Azure),
            _ => None,
        }
    }

    /// The environment variables that carry this cloud's credentials.
    fn credentials(self) -> &'static str {
        match self {
            Cloud::S3 => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            Cloud::Gcs => "GOOGLE_SERVICE_ACCOUNT or GOOGLE_SERVICE_ACCOUNT_KEY",
            Cloud::Azure => "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY",
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        }
    }
}

const SCHEMES: &str = "a local folder, file://, s3://, gs:// or az://";

/// What a location names, opened: a local folder, or a prefix of a bucket with its client.
#[derive(Debug)]
pub enum Place {
    /// A local folder: a path, or the path of a `file://` URL, as written (a relative path is
    /// left for the caller to resolve). Nothing is created.
    Folder(String),
    /// A prefix of a bucket (an Azure container).
    Bucket(Bucket),
}

/// A prefix of a bucket, with the client that reaches it.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The client, with the retries and timeouts of the [`StoreOptions`] it was opened with.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix inside the bucket; empty for the whole bucket.
    pub prefix: Path,
    /// The bucket as a URL, `s3://NAME`: `{url}/{object path}` names an object.
    pub url: String,
}

/// Opens `location` (a folder, `file://`, `s3://`, `gs://` or `az://` URL) for the job
/// setting `setting`, which every error names. Nothing is read or written: a bad location
/// fails here, before any data moves; credentials are checked by the first request.
pub fn open_location(location: &str, setting: &str, options: &StoreOptions) -> Result<Place> {
    // The location is quoted in every error, and a client's error may quote an endpoint:
    // never with credentials written into them.
    let bad = |why: String| Error::config(setting, redact(&format!("`{location}`: {why}")));
    Ok(match parse(location).map_err(bad)? {
        Location::Folder(folder) => Place::Folder(folder.to_string()),
        Location::Bucket {
            cloud,
            bucket,
            prefix,
        } => Place::Bucket(Bucket {
            store: bucket_store(cloud, bucket, options).map_err(bad)?,
            prefix: Path::from(prefix),
            url: format!("{}://{bucket}", cloud.scheme()),
        }),
    })
}

/// Checks the checkpoint location `location` as [`open`] would, without creating anything.
pub(super) fn check(location: &str) -> Result<()> {
    open_location(location, SETTING, &StoreOptions::default()).map(drop)
}

/// A checkpoint location, opened: its object store, the root of the checkpoints inside it,
/// and for a local folder, that folder.
pub(super) struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    pub folder: Option<std::path::PathBuf>,
}

/// Opens the checkpoint location `location` (a local folder is created when missing).
/// Nothing is read or written: a bad location fails here, naming the setting, before any
/// data moves.
pub(super) fn open(location: &str, options: &StoreOptions) -> Result<Opened> {
    match open_location(location, SETTING, options)? {
        Place::Folder(folder) => {
            std::fs::create_dir_all(&folder).map_err(Error::io(&folder))?;
            // Without cleanup, deleting a checkpoint would leave its empty folder behind, and
            // listing would still count it.
            let store = LocalFileSystem::new_with_prefix(&folder)
                .map_err(|e| Error::config(SETTING, format!("`{location}`: {e}")))?
                .with_automatic_cleanup(true);
            Ok(Opened {
                store: Arc::new(store),
                root: Path::default(),
                folder: Some(folder.into()),
            })
        }
        Place::Bucket(Bucket { store, prefix, .. }) => Ok(Opened {
            store,
            root: prefix,
            folder: None,
        }),
    }
}

fn parse(location: &str) -> std::result::Result<Location<'_>, String> {
    let Some((scheme, rest)) = location.split_once(':') else {
        return Ok(Location::Folder(location));
    };
    let known = scheme == "file" || Cloud::from_scheme(scheme).is_some();
    let Some(rest) = rest.strip_prefix("//") else {
        // `s3:bucket` or `s3:/bucket` is a typo, not a folder named `s3:bucket`.
        return if known {
            Err(format!("not a URL: write {scheme}://..."))
        } else {
            Ok(Location::Folder(location))
        };
    };
    if scheme == "file" {
        return Ok(Location::Folder(rest));
    }
    let Some(cloud) = Cloud::from_scheme(scheme) else {
        return Err(format!("{scheme}:// is not supported (use {SCHEMES})"));
    };
    if has_credentials(location) {
        return Err(format!(
            "credentials do not belong in the URL, where every message would repeat them: \
             give them in the environment ({})",
            cloud.credentials()
        ));
    }
    if rest.contains(['?', '#']) {
        return Err("a location has no query string or fragment".into());
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "no {} name (write {scheme}://NAME/PREFIX)",
            if cloud == Cloud::Azure {
                "container"
            } else {
                "bucket"
            }
        ));
    }
    // Bucket and container names are letters, digits, `.`, `-` and `_` on every cloud;
    // anything else (`:`) means a port was written into the URL.
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "`{bucket}` is not a valid bucket name (it contains `{c}`)"
        ));
    }
    Ok(Location::Bucket {
        cloud,
        bucket,
        prefix,
    })
}

/// Settings are applied with `with_config` rather than `with_client_options`, which would
/// replace the client options `from_env` read (AWS_ALLOW_HTTP among them).
fn bucket_store(
    cloud: Cloud,
    bucket: &str,
    options: &StoreOptions,
) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let duration = |key: &str, d: Option<Duration>| {
        d.map(|d| (key.to_string(), format!("{}ms", d.as_millis())))
    };
    let settings: Vec<(String, String)> = [
        duration("timeout", options.request_timeout),
        duration("connect_timeout", options.connect_timeout),
    ]
    .into_iter()
    .flatten()
    .chain(options.settings.iter().cloned())
    .collect();
    let retry = options.retry.clone();
    let store: Arc<dyn ObjectStore> = match cloud {
        Cloud::S3 => {
            let builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry);
            let builder = configure(builder, &settings, |b, k: AmazonS3ConfigKey, v| {
                b.with_config(k, v)
            })?;
            Arc::new(builder.build().map_err(|e| e.to_string())?)
        }
        Cloud::Gcs => {
            let builder = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry);
            let builder = configure(builder, &settings, |b, k: GoogleConfigKey, v| {
                b.with_config(k, v)
            })?;
            Arc::new(builder.build().map_err(|e| e.to_string())?)
        }
        Cloud::Azure => {
            let builder = MicrosoftAzureBuilder::from_env()
                .with_container_name(bucket)
                .with_retry(retry);
            let builder = configure(builder, &settings, |b, k: AzureConfigKey, v| {
                b.with_config(k, v)
            })?;
            Arc::new(builder.build().map_err(|e| e.to_string())?)
        }
    };
    Ok(store)
}

fn configure<B, K>(
    builder: B,
    settings: &[(String, String)],
    set: impl Fn(B, K, &str) -> B,
) -> std::result::Result<B, String>
where
    K: FromStr,
    K::Err: Display,
{
    settings.iter().try_fold(builder, |builder, (key, value)| {
        let key = key.parse().map_err(|e| format!("setting `{key}`: {e}"))?;
        Ok(set(builder, key, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(cloud: Cloud, bucket: &'static str, prefix: &'static str) -> Location<'static> {
        Location::Bucket {
            cloud,
            bucket,
            prefix,
        }
    }

    #[test]
    fn locations_parse_into_folders_and_buckets() {
        let cases = [
            ("/var/sluice", Location::Folder("/var/sluice")),
            ("file:///var/sluice", Location::Folder("/var/sluice")),
            ("relative/dir", Location::Folder("relative/dir")),
            ("s3://b/jobs/fraud", bucket(Cloud::S3, "b", "jobs/fraud")),
            ("s3://b", bucket(Cloud::S3, "b", "")),
            ("s3://b/", bucket(Cloud::S3, "b", "")),
            ("gs://my_bucket.x/p", bucket(Cloud::Gcs, "my_bucket.x", "p")),
            (
                "az://container/a/b/",
                bucket(Cloud::Azure, "container", "a/b/"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn malformed_locations_fail_naming_the_setting_and_the_url() {
        for (location, why) in [
            ("s3:///jobs", "no bucket name"),
            ("s3://", "no bucket name"),
            ("az:///x", "no container name"),
            ("s3:bucket/jobs", "not a URL"),
            ("gs:/bucket", "not a URL"),
            ("s3://host:9000/b", "`host:9000` is not a valid bucket name"),
            (
                "s3://key:secret@b/x",
                "credentials do not belong in the URL",
            ),
            ("gs://token@b/x", "GOOGLE_SERVICE_ACCOUNT"),
            ("s3://b/x?region=eu", "no query string"),
            ("hdfs://nn/x", "hdfs:// is not supported"),
            ("gs://b/x", "setting `nonsense`"),
        ] {
            let options = StoreOptions::default().with_setting("nonsense", "1");
            let err = match open(location, &options) {
                Ok(_) => panic!("{location} opened"),
                Err(err) => err.to_string(),
            };
            let prefix = format!("checkpoint.location: `{}`: ", redact(location));
            assert!(err.starts_with(&prefix), "{err}");
            assert!(err.contains(why), "{location}: {err}");
            assert!(!err.contains("secret") && !err.contains("token"), "{err}");
        }
    }

    #[test]
    fn a_location_opens_as_a_folder_or_a_bucket_prefix_with_its_url() {
        let options = StoreOptions::default()
            .with_setting("aws_access_key_id", "k")
            .with_setting("aws_secret_access_key", "s")
            .with_setting("aws_endpoint", "http://127.0.0.1:1");
        let place = |location| open_location(location, "sink.path", &options);
        for (location, folder) in [("out/x", "out/x"), ("file:///data/out", "/data/out")] {
            match place(location).expect(location) {
                Place::Folder(f) => assert_eq!(f, folder),
                Place::Bucket(b) => panic!("{location} opened as {}", b.url),
            }
        }
        let Place::Bucket(bucket) = place("s3://b/jobs/out/").expect("s3") else {
            panic!("s3://b/jobs/out/ is not a folder");
        };
        assert_eq!(
            (bucket.url.as_str(), bucket.prefix.as_ref()),
            ("s3://b", "jobs/out")
        );
        let err = place("s3:b/out").expect_err("typo").to_string();
        assert_eq!(err, "sink.path: `s3:b/out`: not a URL: write s3://...");
    }

    #[test]
    fn every_cloud_opens_without_touching_the_network() {
        // Credentials and endpoints given as settings, so that the environment of the
        // machine running the tests does not matter.
        let s3 = StoreOptions::default()
            .with_setting("aws_access_key_id", "k")
            .with_setting("aws_secret_access_key", "s")
            .with_setting("aws_endpoint", "http://127.0.0.1:1");
        let opened = open("s3://bucket/jobs/fraud/", &s3).expect("s3");
        assert_eq!(opened.root.as_ref(), "jobs/fraud");
        let gcs = StoreOptions::default().with_setting("google_skip_signature", "true");
        open("gs://bucket/jobs", &gcs).expect("gcs");
        let azure = StoreOptions::default().with_setting("azure_storage_use_emulator", "true");
        open("az://container/jobs", &azure).expect("azure");
    }
}
