-- Edits get a per-conversation counter too, so the repair sweep can find edits whose notification
-- was lost: conversations.edit_seq is the newest, messages.edit_seq says which edit a row carries.

ALTER TABLE conversations ADD COLUMN edit_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edit_seq bigint;
CREATE INDEX messages_edit_seq_idx ON messages (conversation_id, edit_seq) WHERE edit_seq IS NOT NULL;

CREATE FUNCTION ccs_assign_edit_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET edit_seq = edit_seq + 1
     WHERE id = NEW.conversation_id RETURNING edit_seq INTO NEW.edit_seq;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_assign_edit_seq BEFORE UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION ccs_assign_edit_seq();

CREATE OR REPLACE FUNCTION ccs_notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ccs_changes', json_build_object(
        'k', 'm', 'op', left(TG_OP, 1), 'c', NEW.conversation_id, 's', NEW.seq,
        'v', NEW.version, 'id', NEW.id, 'e', NEW.edit_seq)::text);
    RETURN NULL;
END $$;
