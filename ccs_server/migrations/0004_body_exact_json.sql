-- Message bodies keep the exact JSON text the server wrote (type `json`) instead of `jsonb`:
-- `jsonb` cannot hold the NUL character (\u0000) in a string, and the guarantees require every
-- body, NUL included, to be stored and returned byte-identical. The server writes compact JSON
-- itself, so the stored text is canonical for what the client sent.

ALTER TABLE messages ALTER COLUMN body TYPE json USING body::json;

-- The idempotency digest stays md5 of the jsonb text (key order and whitespace insensitive, and
-- equal to the digests stored before this migration) whenever jsonb can represent the body;
-- only a body holding NUL is digested from its exact text.
CREATE FUNCTION ccs_body_digest(p_body json) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN strpos(p_body::text, '\u0000') > 0 THEN 'exact:' || md5(p_body::text)
                ELSE md5(p_body::jsonb::text) END
$$;

-- Same functions as 0001 with `json` bodies (a changed result type needs DROP + CREATE).
DROP FUNCTION ccs_send(text, text, text, text, jsonb);
DROP FUNCTION ccs_edit(text, text, bigint, integer, jsonb, boolean);

-- One round trip per send: membership, idempotency and insert. outcome is one of
-- created | duplicate | idempotency_conflict | forbidden.
CREATE FUNCTION ccs_send(p_conv text, p_user text, p_device text, p_cmid text, p_body json)
RETURNS TABLE (outcome text, id bigint, conversation_id text, seq bigint, sender_user_id text,
               sender_device_id text, client_msg_id text, body json, version integer,
               deleted boolean, created_at timestamptz, edited_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m messages%ROWTYPE;
    digest text := ccs_body_digest(p_body);
BEGIN
    SELECT * INTO m FROM messages x WHERE x.sender_device_id = p_device AND x.client_msg_id = p_cmid;
    IF NOT FOUND THEN
        PERFORM 1 FROM conversation_members cm WHERE cm.conversation_id = p_conv AND cm.user_id = p_user;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'forbidden', NULL::bigint, NULL, NULL::bigint, NULL, NULL, NULL,
                NULL::json, NULL::integer, NULL::boolean, NULL::timestamptz, NULL::timestamptz;
            RETURN;
        END IF;
        BEGIN
            INSERT INTO messages (conversation_id, sender_user_id, sender_device_id, client_msg_id,
                                  body, send_digest)
            VALUES (p_conv, p_user, p_device, p_cmid, p_body, digest) RETURNING * INTO m;
            RETURN QUERY SELECT 'created', m.id, m.conversation_id, m.seq, m.sender_user_id,
                m.sender_device_id, m.client_msg_id, m.body, m.version, m.deleted, m.created_at,
                m.edited_at;
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            -- a concurrent retry won; this subtransaction (and its head_seq increment) is undone
            SELECT * INTO m FROM messages x
             WHERE x.sender_device_id = p_device AND x.client_msg_id = p_cmid;
        END;
    END IF;
    RETURN QUERY SELECT
        CASE WHEN m.conversation_id = p_conv AND m.send_digest = digest
             THEN 'duplicate' ELSE 'idempotency_conflict' END,
        m.id, m.conversation_id, m.seq, m.sender_user_id, m.sender_device_id, m.client_msg_id,
        m.body, m.version, m.deleted, m.created_at, m.edited_at;
END $$;

-- Edit or delete with optimistic concurrency. outcome: updated | forbidden | not_found | conflict.
CREATE FUNCTION ccs_edit(p_conv text, p_user text, p_seq bigint, p_expected integer,
                         p_body json, p_delete boolean)
RETURNS TABLE (outcome text, id bigint, conversation_id text, seq bigint, sender_user_id text,
               sender_device_id text, client_msg_id text, body json, version integer,
               deleted boolean, created_at timestamptz, edited_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m messages%ROWTYPE;
    result text := 'updated';
BEGIN
    PERFORM 1 FROM conversation_members cm WHERE cm.conversation_id = p_conv AND cm.user_id = p_user;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'forbidden', NULL::bigint, NULL, NULL::bigint, NULL, NULL, NULL,
            NULL::json, NULL::integer, NULL::boolean, NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    SELECT * INTO m FROM messages x WHERE x.conversation_id = p_conv AND x.seq = p_seq FOR UPDATE;
    IF NOT FOUND THEN
        result := 'not_found';
    ELSIF m.sender_user_id <> p_user THEN
        result := 'forbidden';
    ELSIF m.version <> p_expected OR m.deleted THEN
        result := 'conflict';
    ELSE
        UPDATE messages x SET body = CASE WHEN p_delete THEN NULL ELSE p_body END,
               deleted = p_delete, version = x.version + 1, edited_at = now()
         WHERE x.id = m.id RETURNING * INTO m;
    END IF;
    RETURN QUERY SELECT result, m.id, m.conversation_id, m.seq, m.sender_user_id,
        m.sender_device_id, m.client_msg_id, m.body, m.version, m.deleted, m.created_at,
        m.edited_at;
END $$;
