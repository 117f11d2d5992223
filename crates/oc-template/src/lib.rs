//! Open Connectors poller URL placeholders (`${date:MASK}` and friends) and Java `SimpleDateFormat` masks,
//! formatted and parsed as `java.text.SimpleDateFormat` (Locale.US) does.
