-- One row per owner and day: a re-run of the same day's mail sends nothing new.
CREATE TABLE recon.email_log (
    owner           text NOT NULL,
    mail_date       date NOT NULL,
    status          text NOT NULL CHECK (status IN ('sending', 'sent', 'nothing_to_send')),
    recipients      text[] NOT NULL,
    open_count      integer NOT NULL,
    new_count       integer NOT NULL,
    subject         text,
    run_id          text NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, mail_date)
);
GRANT SELECT ON recon.email_log TO recon_reader;
