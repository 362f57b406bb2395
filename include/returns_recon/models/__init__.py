"""pydantic v2 models of the API objects: tolerant of fields we do not use, strict on those we
do; money as exact decimals with a currency, timestamps in UTC."""
