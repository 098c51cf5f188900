"""Weather: radar precipitation nowcasting against persistence and optical flow."""
