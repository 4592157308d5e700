// The UI script (filled in by the app issue).
