"""Centres: exam centres, their invitations and delegated user management."""
