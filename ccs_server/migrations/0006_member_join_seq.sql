-- A member sees a conversation from the head at the moment it joined: replay on connect, resume,
-- live delivery and history never reach back before it. Rows present when the column is added
-- get 0 (the whole history): their users may already have read it.
ALTER TABLE conversation_members ADD COLUMN join_seq bigint NOT NULL DEFAULT 0;

-- Set on every insert (REST, fixtures or direct SQL alike) from the committed head: a send still
-- in flight commits a higher seq, which the new member then receives.
CREATE FUNCTION ccs_member_join_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT COALESCE(head_seq, 0) INTO NEW.join_seq FROM conversations WHERE id = NEW.conversation_id;
    NEW.join_seq := COALESCE(NEW.join_seq, 0);
    RETURN NEW;
END $$;

CREATE TRIGGER members_join_seq BEFORE INSERT ON conversation_members
    FOR EACH ROW EXECUTE FUNCTION ccs_member_join_seq();

-- The head announced with member_added is the join point itself, so an online member's live
-- cursor and an offline member's replay start at the same seq.
CREATE OR REPLACE FUNCTION ccs_notify_member() RETURNS trigger LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
    head bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
        SELECT head_seq INTO head FROM conversations WHERE id = r.conversation_id;
    ELSE
        r := NEW;
        head := NEW.join_seq;
    END IF;
    PERFORM pg_notify('ccs_changes', json_build_object(
        'k', CASE WHEN TG_OP = 'DELETE' THEN 'mr' ELSE 'ma' END,
        'c', r.conversation_id, 'u', r.user_id, 'h', COALESCE(head, 0))::text);
    RETURN NULL;
END $$;
