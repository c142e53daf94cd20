/**
 * The Idempotency-Key a create was made with, stored on what it created (comments, reports, posts; a signup's on
 * the account). `key` is unique per collection (it includes the caller's id where there is one), so a retry's
 * insert is refused by the index and finds the first result; `fingerprint` tells a retry from another request
 * that reuses the key.
 */
export interface RequestKey {
  key: string;
  fingerprint: string;
}
