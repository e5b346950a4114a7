"""OpenWeather connector for Mathia."""
