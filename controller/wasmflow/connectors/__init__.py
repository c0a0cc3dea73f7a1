"""Sources and sinks: MQTT, and JSON Lines files / stdin / stdout for local runs."""
