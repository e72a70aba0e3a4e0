"""privacy domain: the end of a merchant relationship (closure), the retention schedule and
the purge of personal data after it (PIPL art. 19 and 47; docs/privacy.md).

It sits above the domains whose rows hold personal data (merchants, onboarding,
terminals, fieldwork, notify) and reads and anonymises them; none of them imports it.
"""
