//! S3 for the evidence store: a bucket with versioning and Object Lock, objects written once
//! in COMPLIANCE mode with a retain-until date, create-only writes (`If-None-Match: *`) so that
//! two writers never claim one key, and the version listing that shows an overwrite or a
//! delete marker.

use std::time::SystemTime;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{EncodingType, ObjectLockEnabled, ObjectLockMode};

use crate::{Aws, AwsError};

/// The lock mode evidence is written with: nobody, not even the account's root, can shorten it.
pub const COMPLIANCE: &str = "COMPLIANCE";

/// Whether a bucket can hold evidence nobody can rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketWorm {
    /// Object Lock enabled. S3 turns versioning on with it and refuses to suspend versioning
    /// on such a bucket, so this is versioning too.
    pub object_lock: bool,
}

/// One version of an object (or a delete marker), from `ListObjectVersions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub version_id: String,
    pub latest: bool,
    pub delete_marker: bool,
    /// The size the bucket declares (0 for a delete marker): checked before anything is read.
    pub size: u64,
    /// When the bucket stored it, on the bucket's clock (not a writer's).
    pub last_modified: Option<SystemTime>,
}

/// A key as listed: decoded when the answer says it is URL-encoded (S3; moto ignores the
/// request and sends keys as they are). Bytes that do not decode to UTF-8 are replaced, so the
/// key no longer names the object and fails the caller's checks, never matching another.
fn listed_key(key: &str, encoded: bool) -> String {
    if encoded {
        percent_encoding::percent_decode_str(key)
            .decode_utf8_lossy()
            .into_owned()
    } else {
        key.to_owned()
    }
}

/// An object's body as it arrives, from [`Aws::get_version`].
pub struct Body {
    key: String,
    stream: ByteStream,
}

impl Body {
    /// The next chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<impl AsRef<[u8]> + use<>>, AwsError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(e)) => Err(AwsError::Other {
                action: "s3:GetObject".into(),
                message: format!("{}: {e}", self.key),
            }),
        }
    }
}

/// An object version's lock, from `HeadObject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// `COMPLIANCE` or `GOVERNANCE`; `None` without a lock.
    pub mode: Option<String>,
    pub retain_until: Option<SystemTime>,
}

/// When a write may happen: always, only if the key is absent (`If-None-Match: *`), or only
/// if its newest version is still the one read (`If-Match: ETAG`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    Absent,
    Matches(String),
}

/// What a conditional write found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    Written,
    /// The condition did not hold: another writer got there first.
    Conflict,
}

impl Aws {
    /// Object Lock of a bucket (`s3:GetBucketObjectLockConfiguration`), which implies
    /// versioning. (Not `GetBucketVersioning`: moto answers it in a shape the SDK cannot parse,
    /// and S3's own rule makes the answer redundant.)
    pub async fn bucket_worm(&self, bucket: &str) -> Result<BucketWorm, AwsError> {
        let object_lock = match self
            .s3
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(c) => c
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| *e == ObjectLockEnabled::Enabled),
            // A bucket without Object Lock answers ObjectLockConfigurationNotFoundError (a
            // missing bucket, NoSuchBucket, stays an error).
            Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => false,
            Err(e) => {
                return Err(AwsError::from_sdk(
                    "s3:GetBucketObjectLockConfiguration",
                    bucket,
                    e,
                ));
            }
        };
        Ok(BucketWorm { object_lock })
    }

    /// Writes `bytes` under `key`, locked in COMPLIANCE mode until `retain_until`
    /// (`s3:PutObject`, `s3:PutObjectRetention`), if `when` holds.
    pub async fn put_locked(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        retain_until: SystemTime,
        when: Condition,
    ) -> Result<Put, AwsError> {
        let mut req = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from(retain_until));
        let conditional = when != Condition::Always;
        req = match when {
            Condition::Always => req,
            Condition::Absent => req.if_none_match("*"),
            Condition::Matches(etag) => req.if_match(etag),
        };
        match req.send().await {
            Ok(_) => Ok(Put::Written),
            Err(e)
                if conditional
                    && e.raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(Put::Conflict)
            }
            Err(e) => Err(AwsError::from_sdk("s3:PutObject", key, e)),
        }
    }

    /// The newest version of an object and its ETag, read no further than `max` bytes (a body
    /// longer than that is refused with [`AwsError::TooLarge`] once `max` bytes have arrived,
    /// so a bucket cannot make its reader hold more); `None` when there is none
    /// (`s3:GetObject`).
    pub async fn get_tagged(
        &self,
        bucket: &str,
        key: &str,
        max: u64,
    ) -> Result<Option<(Vec<u8>, String)>, AwsError> {
        let out = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) => {
                return match AwsError::from_sdk("s3:GetObject", key, e) {
                    AwsError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let mut body = Body {
            key: key.to_owned(),
            stream: out.body,
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next_chunk().await? {
            let chunk = chunk.as_ref();
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(AwsError::TooLarge {
                    what: format!("s3://{bucket}/{key}"),
                    max,
                });
            }
            bytes.extend_from_slice(chunk);
        }
        Ok(Some((bytes, etag)))
    }

    /// The newest version of an object, read no further than `max` bytes (as
    /// [`Aws::get_tagged`]); `None` when there is none (`s3:GetObject`).
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, AwsError> {
        Ok(self.get_tagged(bucket, key, max).await?.map(|(b, _)| b))
    }

    /// Every version and delete marker under `prefix` (`s3:ListBucketVersions`).
    pub async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectVersion>, AwsError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .s3
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                // A key may hold characters XML 1.0 cannot carry (C0 controls): S3 sends
                // every key URL-encoded when asked, and says so in the answer.
                .encoding_type(EncodingType::Url)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3:ListBucketVersions", bucket, e))?;
            let encoded = page.encoding_type() == Some(&EncodingType::Url);
            let key = |k: Option<&str>| listed_key(k.unwrap_or_default(), encoded);
            for v in page.versions() {
                out.push(ObjectVersion {
                    key: key(v.key()),
                    version_id: v.version_id().unwrap_or_default().to_owned(),
                    latest: v.is_latest().unwrap_or(false),
                    delete_marker: false,
                    size: v.size().map_or(0, |s| s.max(0) as u64),
                    last_modified: v
                        .last_modified()
                        .and_then(|d| SystemTime::try_from(*d).ok()),
                });
            }
            for d in page.delete_markers() {
                out.push(ObjectVersion {
                    key: key(d.key()),
                    version_id: d.version_id().unwrap_or_default().to_owned(),
                    latest: d.is_latest().unwrap_or(false),
                    delete_marker: true,
                    size: 0,
                    last_modified: d
                        .last_modified()
                        .and_then(|d| SystemTime::try_from(*d).ok()),
                });
            }
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }

    /// One version of an object, its body still unread: the caller pulls it a chunk at a
    /// time and decides how much it will take, so a body longer than its listing declared is
    /// never held whole (`s3:GetObject`). `None` when the version is gone.
    pub async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> Result<Option<Body>, AwsError> {
        match self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
        {
            Ok(o) => Ok(Some(Body {
                key: key.to_owned(),
                stream: o.body,
            })),
            Err(e) => match AwsError::from_sdk("s3:GetObject", key, e) {
                AwsError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The lock on one version of an object (`HeadObject`: `s3:GetObject`,
    /// `s3:GetObjectRetention`).
    pub async fn lock_of(&self, bucket: &str, key: &str, version: &str) -> Result<Lock, AwsError> {
        let h = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject", key, e))?;
        Ok(Lock {
            mode: h.object_lock_mode().map(|m| m.as_str().to_owned()),
            retain_until: h
                .object_lock_retain_until_date()
                .and_then(|d| SystemTime::try_from(*d).ok()),
        })
    }

    /// Deletes one version of an object (`s3:DeleteObjectVersion`); a locked version is refused
    /// with AccessDenied.
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> Result<(), AwsError> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObjectVersion", key, e))?;
        Ok(())
    }

    /// Deletes an object the versioned way: a delete marker on top (`s3:DeleteObject`).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), AwsError> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObject", key, e))?;
        Ok(())
    }

    /// Writes a new version over an object, unlocked (tests: an overwrite the store must name).
    pub async fn put_plain(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", key, e))?;
        Ok(())
    }

    /// Turns versioning on (`s3:PutBucketVersioning`).
    pub async fn enable_versioning(&self, bucket: &str) -> Result<(), AwsError> {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.s3
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutBucketVersioning", bucket, e))?;
        Ok(())
    }

    /// Creates a bucket, with Object Lock (and so versioning) when `worm` (`s3:CreateBucket`).
    pub async fn create_bucket(&self, bucket: &str, worm: bool) -> Result<(), AwsError> {
        self.s3
            .create_bucket()
            .bucket(bucket)
            .object_lock_enabled_for_bucket(worm)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:CreateBucket", bucket, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::listed_key;

    #[test]
    fn a_url_encoded_listing_is_decoded_and_a_plain_one_kept() {
        assert_eq!(listed_key("a/b%1B%5B2J/c%2F..", true), "a/b\u{1b}[2J/c/..");
        assert_eq!(listed_key("a/b%1B", false), "a/b%1B");
        assert_eq!(listed_key("a%FF", true), "a\u{fffd}");
    }
}
