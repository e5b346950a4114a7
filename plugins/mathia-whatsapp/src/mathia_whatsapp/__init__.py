"""WhatsApp Cloud API connector for Mathia."""
