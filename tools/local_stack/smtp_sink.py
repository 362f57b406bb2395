"""``python -m local_stack.smtp_sink``: a local SMTP server (aiosmtpd) that saves every message it
receives as an .eml file, so a local user can open the exception emails and failure alerts
(`make demo`, `make up`); its log names each mail saved."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        recipient = (envelope.rcpt_tos or ["unknown"])[0].replace("@", "_at_")
        path = self.folder / f"{stamp}-{recipient}.eml"
        path.write_bytes(envelope.content)
        subject = BytesParser(policy=policy.default).parsebytes(envelope.content, headersonly=True)["Subject"]
        print(f"saved {path.name}: {subject!r} to {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18025)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    controller = Controller(SaveToFolder(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"SMTP sink on 127.0.0.1:{args.port}, saving to {args.dir}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
