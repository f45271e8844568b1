"""What an environment costs a month: its plan's figure and what runs now (`cost/`).

``prices.py`` reads the one price table (``prices.json``) and takes the account's own
droplet prices over it; ``estimate.py`` computes, as pure functions over the Environment or
what the account holds, the lines, the totals and the budget's findings; ``text.py`` words
them. Only ``cloud/billable.py`` reads the account.
"""
