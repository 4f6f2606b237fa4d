-- 004_media_objects: the shared media store (WTT_MEDIA_STORE=pg,
-- docs/operations.md "The shared media store").
--
-- Every media file (uploads and results) is one PostgreSQL large object;
-- this table maps its generated name to the object. A row is inserted in
-- the same transaction that wrote the object's bytes, so a name is visible
-- only once its bytes are complete, and removed in the same transaction as
-- lo_unlink, so no object outlives its row. Names are never reused
-- (random, or derived from the content), so an object never changes.

CREATE TABLE media_objects (
    name       text PRIMARY KEY
               CONSTRAINT media_objects_name_check
               CHECK (name ~ '^[0-9a-f]{32}\.(wav|mp3|flac|ogg|mid|json|npy)$'),
    oid        oid NOT NULL CONSTRAINT media_objects_oid_key UNIQUE,
    size       bigint NOT NULL CONSTRAINT media_objects_size_check
               CHECK (size >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
