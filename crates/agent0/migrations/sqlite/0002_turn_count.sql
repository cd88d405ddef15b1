-- Each conversation's turn count beside it, as on PostgreSQL: a turn that names no conversation
-- reads the person's latest conversation and its count from one index entry and one row, without
-- also descending the turns' index (every turn does this read). The trigger keeps the count in
-- the statement that adds the turn, so the two cannot disagree; turns are numbered one past the
-- highest from 1 and deleted only with their conversation, so the highest number is the count.
ALTER TABLE conversations ADD COLUMN turn_count INTEGER NOT NULL DEFAULT 0;
UPDATE conversations
    SET turn_count = (SELECT COALESCE(MAX(seq), 0) FROM turns WHERE conversation_id = conversations.id);
CREATE TRIGGER turns_count AFTER INSERT ON turns BEGIN
    UPDATE conversations SET turn_count = NEW.seq
        WHERE id = NEW.conversation_id AND turn_count < NEW.seq;
END;
