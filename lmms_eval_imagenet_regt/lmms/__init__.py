"""lmms"""
