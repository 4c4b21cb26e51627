"""Pure types and rules: roles, principals, targets, directory snapshots, effective access.

Nothing here touches a database, the network or the screen.
"""
