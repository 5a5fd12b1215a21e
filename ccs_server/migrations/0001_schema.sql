-- CCS schema v1: tables of protocol.md section 9, seq trigger, change notifications, send/edit functions.

CREATE TABLE users (
    id           text PRIMARY KEY,
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id         text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users(id),
    name       text,
    revoked    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_user_idx ON devices(user_id);

CREATE TABLE conversations (
    id         text PRIMARY KEY,
    title      text,
    head_seq   bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conversation_members (
    conversation_id text NOT NULL REFERENCES conversations(id),
    user_id         text NOT NULL REFERENCES users(id),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user_idx ON conversation_members(user_id);

CREATE TABLE messages (
    id               bigserial PRIMARY KEY,
    conversation_id  text NOT NULL REFERENCES conversations(id),
    seq              bigint NOT NULL,
    sender_user_id   text NOT NULL,
    sender_device_id text,
    client_msg_id    text,
    body             jsonb,
    -- md5 of the body as first sent: an idempotent retry is compared with it even after edits
    send_digest      text,
    version          integer NOT NULL DEFAULT 1,
    deleted          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    edited_at        timestamptz,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_device_id, client_msg_id)
);

CREATE TABLE device_cursors (
    device_id       text NOT NULL,
    conversation_id text NOT NULL REFERENCES conversations(id),
    delivered_upto  bigint NOT NULL DEFAULT 0,
    read_upto       bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, conversation_id),
    CHECK (read_upto <= delivered_upto)
);

CREATE TABLE device_presence (
    device_id text PRIMARY KEY,
    user_id   text NOT NULL,
    status    text NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    last_seen timestamptz NOT NULL DEFAULT now(),
    node_id   text
);
CREATE INDEX device_presence_user_idx ON device_presence(user_id);

-- seq: the row lock on the conversation serialises concurrent senders, so seqs are gapless and
-- commit order equals seq order; an aborted insert rolls the increment back with it.
CREATE FUNCTION ccs_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NULL THEN
        UPDATE conversations SET head_seq = head_seq + 1
         WHERE id = NEW.conversation_id RETURNING head_seq INTO NEW.seq;
        IF NEW.seq IS NULL THEN
            RAISE foreign_key_violation USING MESSAGE = 'unknown conversation ' || NEW.conversation_id;
        END IF;
    ELSE
        UPDATE conversations SET head_seq = GREATEST(head_seq, NEW.seq) WHERE id = NEW.conversation_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_assign_seq BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION ccs_assign_seq();

-- Ids only: every node fetches (or has cached) the row itself. Delivered at commit, in commit order.
CREATE FUNCTION ccs_notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ccs_changes', json_build_object(
        'k', 'm', 'op', left(TG_OP, 1), 'c', NEW.conversation_id, 's', NEW.seq,
        'v', NEW.version, 'id', NEW.id)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER messages_notify AFTER INSERT OR UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION ccs_notify_message();

CREATE FUNCTION ccs_notify_member() RETURNS trigger LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
    head bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    SELECT head_seq INTO head FROM conversations WHERE id = r.conversation_id;
    PERFORM pg_notify('ccs_changes', json_build_object(
        'k', CASE WHEN TG_OP = 'DELETE' THEN 'mr' ELSE 'ma' END,
        'c', r.conversation_id, 'u', r.user_id, 'h', COALESCE(head, 0))::text);
    RETURN NULL;
END $$;

CREATE TRIGGER members_notify AFTER INSERT OR DELETE ON conversation_members
    FOR EACH ROW EXECUTE FUNCTION ccs_notify_member();

-- One round trip per send: membership, idempotency and insert. outcome is one of
-- created | duplicate | idempotency_conflict | forbidden.
CREATE FUNCTION ccs_send(p_conv text, p_user text, p_device text, p_cmid text, p_body jsonb)
RETURNS TABLE (outcome text, id bigint, conversation_id text, seq bigint, sender_user_id text,
               sender_device_id text, client_msg_id text, body jsonb, version integer,
               deleted boolean, created_at timestamptz, edited_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    m messages%ROWTYPE;
    digest text := md5(p_body::text);
BEGIN
    SELECT * INTO m FROM messages x WHERE x.sender_device_id = p_device AND x.client_msg_id = p_cmid;
    IF NOT FOUND THEN
        PERFORM 1 FROM conversation_members cm WHERE cm.conversation_id = p_conv AND cm.user_id = p_user;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'forbidden', NULL::bigint, NULL, NULL::bigint, NULL, NULL, NULL,
                NULL::jsonb, NULL::integer, NULL::boolean, NULL::timestamptz, NULL::timestamptz;
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
                         p_body jsonb, p_delete boolean)
RETURNS TABLE (outcome text, id bigint, conversation_id text, seq bigint, sender_user_id text,
               sender_device_id text, client_msg_id text, body jsonb, version integer,
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
            NULL::jsonb, NULL::integer, NULL::boolean, NULL::timestamptz, NULL::timestamptz;
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

-- Forward-only cursors; read implies delivered. outcome: ok | forbidden | out_of_range.
CREATE FUNCTION ccs_receipt(p_conv text, p_user text, p_device text, p_kind text, p_seq bigint)
RETURNS TABLE (outcome text, delivered_upto bigint, read_upto bigint, changed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    head bigint;
    old_d bigint := 0;
    old_r bigint := 0;
    new_d bigint;
    new_r bigint;
BEGIN
    SELECT c.head_seq INTO head FROM conversations c
      JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = p_user
     WHERE c.id = p_conv;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'forbidden', NULL::bigint, NULL::bigint, NULL::boolean;
        RETURN;
    END IF;
    IF p_seq > head THEN
        RETURN QUERY SELECT 'out_of_range', NULL::bigint, NULL::bigint, NULL::boolean;
        RETURN;
    END IF;
    INSERT INTO device_cursors AS d (device_id, conversation_id) VALUES (p_device, p_conv)
        ON CONFLICT (device_id, conversation_id) DO NOTHING;
    SELECT d.delivered_upto, d.read_upto INTO old_d, old_r FROM device_cursors d
     WHERE d.device_id = p_device AND d.conversation_id = p_conv FOR UPDATE;
    new_d := GREATEST(old_d, p_seq);
    new_r := CASE WHEN p_kind = 'read' THEN GREATEST(old_r, p_seq) ELSE old_r END;
    IF new_d <> old_d OR new_r <> old_r THEN
        UPDATE device_cursors d SET delivered_upto = new_d, read_upto = new_r, updated_at = now()
         WHERE d.device_id = p_device AND d.conversation_id = p_conv;
    END IF;
    RETURN QUERY SELECT 'ok', new_d, new_r, (new_d <> old_d OR new_r <> old_r);
END $$;
