#!/usr/bin/env python3
"""Compares two `s3_suite.py --json` outputs (e.g. ours and moto): the S3 differential check.

Usage: python scripts/lib/s3_diff.py A.json B.json

The comparison is endpoint_diff.py's, unchanged (it reads any two suite JSON files: {check name:
observed}, "_meta" ignored); this module only adds the S3 checks where moto departs from AWS, so
that a difference in them prints as "known deviation" rather than failing. s3_suite.py imports
KNOWN_MOTO_DEVIATIONS from here to mark those checks "# TODO known moto deviation" with --name moto.
Exit status as endpoint_diff.py: 1 when a check present in both runs differs and is not a known
deviation, 2 on bad input, else 0.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import endpoint_diff  # noqa: E402

# Checks where moto (5.2.x, server mode) does not do what AWS documents. name -> reason (with the
# source of AWS's behaviour; the module docstring of s3_suite.py lists the sources in full).
S3_KNOWN_MOTO_DEVIATIONS = {
    "s3 invalid bucket names -> InvalidBucketName 400":
        "moto rejects only names shorter than 3 or longer than 63 characters and creates buckets named with "
        "uppercase letters, underscores, a leading dash, adjacent dots or an IP address; AWS rejects them all "
        "with 400 InvalidBucketName (S3 User Guide, general purpose bucket naming rules; S3 error codes)",
    "s3 Content-MD5: right accepted, wrong -> BadDigest 400, malformed -> InvalidDigest 400":
        "moto stores the object whatever Content-MD5 says; AWS answers BadDigest for a digest that does not "
        "match and InvalidDigest for one that is not a base64 MD5 (S3 error codes; PutObject API Content-MD5)",
    "s3 flexible checksums: x-amz-checksum-crc32/sha256 kept and returned with ChecksumMode, tampered -> BadDigest":
        "moto stores an object whose x-amz-checksum-crc32 does not match the body; AWS rejects it with 400 "
        "BadDigest \"The CRC32 you specified did not match the calculated checksum.\" (S3 User Guide, checking "
        "object integrity; aws-sdk-ruby #3322)",
    "s3 DeleteObjects batch: verbose and Quiet":
        "moto lists every key under Deleted in quiet mode; AWS: \"In quiet mode the response includes only keys "
        "where the delete action encountered an error\" (DeleteObjects API, Quiet)",
    "s3 key of 1024 bytes accepted, 1025 bytes -> KeyTooLongError 400":
        "moto stores keys longer than 1024 bytes; AWS limits a key to 1024 bytes of UTF-8 and answers 400 "
        "KeyTooLongError (S3 User Guide, naming objects; S3 error codes)",
    "s3 ListObjects (v1) Marker, MaxKeys, NextMarker with a delimiter":
        "with a Delimiter moto returns every key and common prefix, ignoring MaxKeys, with IsTruncated false and "
        "no NextMarker; AWS counts keys and common prefixes together against MaxKeys and returns NextMarker when a "
        "delimiter is given and the response is truncated (ListObjects API, MaxKeys / NextMarker)",
    "s3 multipart abort -> NoSuchUpload 404 on UploadPart and ListParts":
        "moto answers UploadPart to an aborted upload with HTTP 500 (ListParts gets 404 NoSuchUpload); AWS answers "
        "404 NoSuchUpload \"The specified multipart upload does not exist\" (S3 error codes; AbortMultipartUpload API)",
    "s3 multipart parts out of order -> InvalidPartOrder 400":
        "moto completes an upload whose part list is not in ascending order; AWS answers 400 InvalidPartOrder "
        "(S3 error codes; CompleteMultipartUpload API)",
    "s3 aws-chunked body with a wrong trailer checksum -> BadDigest 400, object not created":
        "moto stores an aws-chunked body whose trailing x-amz-checksum-crc32 does not match; AWS verifies "
        "trailing checksums (S3 User Guide, checking object integrity: trailing checksums) [the error code for "
        "the trailer case is assumed to be BadDigest as for the header case]",
    "s3 presigned URL expired -> AccessDenied 403 \"Request has expired\"":
        "moto (server mode) serves a presigned URL after X-Amz-Date + X-Amz-Expires; AWS answers 403 AccessDenied "
        "\"Request has expired\" (aws.md 5.3; S3 API, authenticating requests using query parameters)",
    "s3 presigned URL with X-Amz-Expires > 604800 -> AuthorizationQueryParametersError 400":
        "moto serves a presigned URL valid for more than 7 days; AWS limits X-Amz-Expires to 604800 and answers "
        "400 AuthorizationQueryParametersError (aws.md 5.2; S3 API, query-string authentication)",
    "s3 presigned POST: 204 by default, 201 with PostResponse XML, 200":
        "moto answers success_action_status 201 with an empty body and the 204 without an ETag header; AWS "
        "returns the PostResponse document (Location, Bucket, Key, ETag) with 201 (S3 API PostObject, "
        "success_action_status; aws.md 5.4)",
    "s3 presigned POST expired policy -> AccessDenied 403 \"Policy expired\"":
        "moto does not evaluate POST policies and stores the upload; AWS answers 403 AccessDenied \"Invalid "
        "according to Policy: Policy expired.\" (aws.md 5.4; S3 API, creating a POST policy: expiration)",
    "s3 presigned POST to another bucket than the policy's -> AccessDenied 403":
        "moto does not evaluate POST policies; AWS fails the {\"bucket\": ...} condition with 403 AccessDenied "
        "\"Invalid according to Policy: Policy Condition failed\" (aws.md 5.4)",
    "s3 presigned POST key outside the allowed prefix -> AccessDenied 403":
        "moto does not evaluate POST policies; AWS fails [\"starts-with\", \"$key\", ...] with 403 AccessDenied "
        "(aws.md 5.4; S3 API, POST policy conditions)",
    "s3 presigned POST larger than content-length-range -> EntityTooLarge 400":
        "moto does not evaluate POST policies; AWS answers 400 EntityTooLarge for a file above content-length-range "
        "(aws.md 5.4)",
    "s3 presigned POST smaller than content-length-range -> EntityTooSmall 400":
        "moto does not evaluate POST policies; AWS answers 400 EntityTooSmall for a file below content-length-range "
        "(aws.md 5.4)",
    "s3 presigned POST Content-Type not matching its condition -> AccessDenied 403":
        "moto does not evaluate POST policies; AWS fails [\"starts-with\", \"$Content-Type\", ...] with 403 "
        "AccessDenied (aws.md 5.4)",
    "s3 presigned POST field not in the policy -> AccessDenied 403 \"Extra input fields\"":
        "moto does not evaluate POST policies; AWS requires a condition for every form field but x-amz-signature, "
        "file, policy and x-ignore-* and answers 403 AccessDenied \"Invalid according to Policy: Extra input "
        "fields: ...\" (S3 API, creating a POST policy; aws-sdk-php #3292)",
    "s3 CORS preflight answered by the first matching of several rules (wildcard origin https://*.example.org)":
        "moto applies every CORS rule and answers 403 when any rule's AllowedOrigins misses the Origin (and "
        "merges the rules' methods); AWS \"uses the first CORSRule rule that matches the incoming browser "
        "request\" (S3 User Guide, CORS configuration - quoted in moto's own TODO). moto also refuses (403) a "
        "preflight for a key that exists, which is why the other preflight checks ask about a new key",
    "s3 CORS preflight from a disallowed origin, method or header, or without CORS -> 403":
        "moto puts the refused Origin in Access-Control-Allow-Origin on its 403; AWS sends no CORS headers when "
        "no rule matches (S3 API, OPTIONS object: the header is absent when the origin is not allowed)",
    "s3 CORS GET with an Origin gets Access-Control-Allow-Origin and Vary: Origin":
        "moto sends no Vary header and answers any Origin with Access-Control-Allow-Origin; AWS adds CORS headers "
        "only for an origin a rule allows (S3 User Guide, CORS) [Vary: Origin on S3 responses: UNVERIFIED]",
    "s3 HTTP/1.1 keep-alive: PUT, GET, HEAD, list, 404 on one connection (no Connection: close)":
        "moto's development server (Werkzeug) answers every request with Connection: close; S3 keeps HTTP/1.1 "
        "connections open (RFC 9112 persistence is the HTTP/1.1 default; the SDKs pool connections to S3)",
    "s3 errors are application/xml with Code, Message, RequestId, and Key / BucketName / Resource":
        "moto sends no x-amz-request-id header with its errors; AWS sends x-amz-request-id on every response "
        "(S3 API, common response headers)",
}

KNOWN_MOTO_DEVIATIONS = {**endpoint_diff.KNOWN_MOTO_DEVIATIONS, **S3_KNOWN_MOTO_DEVIATIONS}


def main(argv):
    endpoint_diff.KNOWN_MOTO_DEVIATIONS = KNOWN_MOTO_DEVIATIONS   # read by endpoint_diff.main at call time
    return endpoint_diff.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
