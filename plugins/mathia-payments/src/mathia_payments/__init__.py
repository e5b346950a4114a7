"""Wallet top-ups through IntaSend (M-Pesa STK push) and Stripe, for Mathia."""
