-- A row written straight into messages by another program (protocol §9) carried no send_digest,
-- so a retry of its (sender_device_id, client_msg_id) was answered idempotency_conflict even with
-- the same body, although §4.2-f compares bodies as JSON values. Such inserts now get the digest
-- of their body, as ccs_send computes it. Existing rows are left alone: an UPDATE of every old
-- row would broadcast each as message_updated.
CREATE FUNCTION ccs_default_send_digest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.send_digest IS NULL AND NEW.body IS NOT NULL THEN
        NEW.send_digest := ccs_body_digest(NEW.body);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_default_send_digest BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION ccs_default_send_digest();
