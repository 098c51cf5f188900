"""High-energy physics: tracking and jet tagging on ROOT files, calorimeter showers."""
